package testbed

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fleetd/fleetd/internal/local"
)

// Moto is a moto_server on loopback standing in for AWS (EC2, SQS,
// EventBridge, DynamoDB). Each test gets its own server, hence its own state.
type Moto struct {
	// Endpoint is the base URL to give aws-sdk-go-v2 (BaseEndpoint).
	Endpoint string
}

// MotoBinary is moto_server from the virtualenv scripts/tools.sh installs.
func MotoBinary() string {
	if b := os.Getenv("FLEETD_MOTO_SERVER"); b != "" {
		return b
	}
	return filepath.Join(local.CacheDir(), "venv", "bin", "moto_server")
}

// StartMoto starts moto_server on a free loopback port and waits until it
// answers. A missing installation fails the test with the command to run.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin := MotoBinary()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("moto_server not found at %s: run scripts/tools.sh (or make tools) first", bin)
	}
	port, err := local.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := local.Spawn(dir, filepath.Join(dir, "moto.log"), bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "moto.log")); err == nil && len(b) > 0 {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("---- tail of moto.log ----\n%s", b)
			}
		}
		p.Kill()
	})
	m := &Moto{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	hc := &http.Client{Timeout: 2 * time.Second}
	Eventually(t, 60*time.Second, func() error {
		select {
		case <-p.Done():
			t.Fatalf("moto_server exited during start-up; see %s", filepath.Join(dir, "moto.log"))
		default:
		}
		resp, err := hc.Get(m.Endpoint + "/moto-api/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("moto answered %s", resp.Status)
		}
		return nil
	})
	return m
}
