package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// OwnerProperty is the JVM system property every child carries, set to the
// owner's pid, so stragglers from a crashed owner can be found with pgrep.
const OwnerProperty = "fleetd.owner"

// Process is a supervised child process. done closes when it has exited; err
// then holds how it ended.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func javaBinary() string {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return filepath.Join(h, "bin", "java")
	}
	return "java"
}

// jvmArgs keeps the footprint small enough for several JVMs on a 2-core
// laptop: a capped heap, the serial collector, and the C1 compiler alone
// (TieredStopAtLevel=1). A local fleet lives minutes and moves hundreds of
// megabytes: C2's optimising compiles cost more CPU than they ever win back
// (measured: a broker replacement test used 109 s of CPU with C2, 46 s
// without, and took half the wall time). Production brokers are not started
// here.
func jvmArgs(heapMB int, nodeDir string, d Dist, extra ...string) []string {
	cds, _ := cdsArgs(d, false)
	return jvmArgsWith(heapMB, nodeDir, d, cds, extra...)
}

func jvmArgsWith(heapMB int, nodeDir string, d Dist, cds []string, extra ...string) []string {
	args := []string{
		fmt.Sprintf("-Xmx%dm", heapMB),
		fmt.Sprintf("-Xms%dm", min(heapMB, 128)),
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Dkafka.logs.dir=" + nodeDir,
		"-D" + OwnerProperty + "=" + strconv.Itoa(os.Getpid()),
	}
	if d.Major() == 3 {
		args = append(args, "-Dlog4j.configuration=file:"+filepath.Join(nodeDir, "log4j.properties"))
	} else {
		args = append(args, "-Dlog4j2.configurationFile="+filepath.Join(nodeDir, "log4j2.properties"))
	}
	args = append(args, cds...)
	args = append(args, "-cp", d.classpath())
	return append(args, extra...)
}

// callerJVMSettings are environment variables every JVM (or Kafka's own
// scripts) reads on its own. The caller's values are for the caller's Java:
// a JAVA_TOOL_OPTIONS with -Xmx1m, or an agent, must not change the brokers
// a test or the demo starts, so children never see them.
var callerJVMSettings = []string{"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "KAFKA_OPTS", "KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS"}

// childEnv is this process's environment without callerJVMSettings.
func childEnv() []string {
	env := os.Environ()
	return slices.DeleteFunc(env, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(callerJVMSettings, name)
	})
}

// startJVM runs java with output to nodeDir/stdout.log.
func startJVM(nodeDir string, args []string) (*Process, error) {
	p, err := Spawn(nodeDir, filepath.Join(nodeDir, "stdout.log"), javaBinary(), args...)
	if err != nil {
		return nil, fmt.Errorf("%w (is Java 17+ installed, or JAVA_HOME set?)", err)
	}
	return p, nil
}

// Spawn starts name with args in dir, output appended to logPath. The child
// gets its own process group and SIGKILL when the thread that started it
// dies, so a crashed or panicking owner leaves nothing behind.
func Spawn(dir, logPath, name string, args ...string) (*Process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open process log: %w", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the child's process id (and process group id).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the child has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the whole process group.
func (p *Process) Signal(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PID(), sig)
}

// Wait waits for exit, at most d.
func (p *Process) Wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return fmt.Errorf("pid %d still running after %s", p.PID(), d)
	}
}

// Kill sends SIGKILL and waits until the process is reaped. Idempotent.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// runTool runs a short-lived JVM tool (kafka-storage format) to completion.
func runTool(ctx context.Context, nodeDir string, args []string) error {
	cmd := exec.CommandContext(ctx, javaBinary(), args...)
	cmd.Dir = nodeDir
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, lastLines(out, 10))
	}
	return nil
}

func lastLines(b []byte, n int) string {
	lines := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			lines++
			if lines > n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// waitListening polls addr until it accepts a TCP connection, the process
// exits, ctx ends or d passes.
func waitListening(ctx context.Context, p *Process, addr string, d time.Duration) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return errors.New("process exited during start-up")
		case <-deadline.C:
			return fmt.Errorf("not listening on %s after %s", addr, d)
		case <-tick.C:
		}
	}
}

// FreePort asks the kernel for an unused loopback port and claims it for a
// while, so that no other caller of FreePort, in this process or another,
// is handed the same port before its owner binds it. The kernel only knows
// bound ports: a port picked here and bound seconds later by a starting JVM
// or fleetd was handed out twice when several test packages ran at once
// (CI saw "bind: address already in use"). Claims are files named by port
// in a shared directory, reused once older than portClaimTTL.
func FreePort() (int, error) {
	dir := filepath.Join(os.TempDir(), "fleetd-port-claims")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if claimPort(dir, port) {
			return port, nil
		}
	}
	return 0, errors.New("find a free port: 50 ports in a row were claimed by other callers")
}

// portClaimTTL is how long a claimed port is kept from other callers: longer
// than any start-up between picking a port and binding it.
const portClaimTTL = 10 * time.Minute

// claimPort creates dir/port exclusively, or takes over a claim older than
// portClaimTTL. It reports whether the caller now holds the claim.
func claimPort(dir string, port int) bool {
	name := filepath.Join(dir, strconv.Itoa(port))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err == nil {
		f.Close()
		return true
	}
	st, err := os.Stat(name)
	if err != nil || time.Since(st.ModTime()) < portClaimTTL {
		return false
	}
	// A stale claim: refresh its time. Two callers racing here may both win;
	// that needs two stale-claim takeovers of one port within one start-up.
	now := time.Now()
	return os.Chtimes(name, now, now) == nil
}

// portFree reports whether port can be bound right now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
