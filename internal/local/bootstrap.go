package local

import (
	"io"
	"net"
	"sync"
	"time"
)

// bootstrapProxy is the local stand-in for the DNS name (or load balancer)
// a production fleet puts in controller.quorum.bootstrap.servers: one
// stable address that reaches whichever controllers run now. Kafka's nodes
// go back to the bootstrap servers whenever they lose the quorum's leader;
// a list naming the original controllers directly would strand them once
// every original controller has been replaced (seen in this project's
// controller-replacement test: brokers and a removed voter looped on
// "Connection to node -2 could not be established" until fleetd gave up).
type bootstrapProxy struct {
	ln      net.Listener
	targets func() []string // running controllers' listeners
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
	next  int
}

func startBootstrapProxy(targets func() []string) (*bootstrapProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &bootstrapProxy{ln: ln, targets: targets, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *bootstrapProxy) addr() string { return p.ln.Addr().String() }

func (p *bootstrapProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

// forward connects c to the next running controller that answers, in
// rotation, and copies both ways until either side closes.
func (p *bootstrapProxy) forward(c net.Conn) {
	defer c.Close()
	targets := p.targets()
	p.mu.Lock()
	start := p.next
	p.next++
	p.mu.Unlock()
	var up net.Conn
	for i := range targets {
		d, err := net.DialTimeout("tcp", targets[(start+i)%len(targets)], 2*time.Second)
		if err == nil {
			up = d
			break
		}
	}
	if up == nil {
		return
	}
	defer up.Close()
	if !p.track(c, up) {
		return
	}
	defer p.untrack(c, up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (p *bootstrapProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false // closed
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

func (p *bootstrapProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// close stops accepting, cuts every forwarded connection and waits for the
// goroutines, bounded.
func (p *bootstrapProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
