// Package kclient builds franz-go clients from fleetd's Kafka connection
// settings: bootstrap servers, TLS and SASL/SCRAM. Every command and the
// daemon connect through it, so security settings are handled in one place.
// Secrets never appear in errors or in String.
package kclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Settings say how to reach and authenticate to a cluster.
type Settings struct {
	Bootstrap []string `yaml:"bootstrap"`
	// Controllers are the KRaft controllers' listeners (host:port). fleetd
	// changes broker-level throttle configs through them, which is the only
	// way to remove a throttle from a broker that died (KIP-919).
	Controllers []string `yaml:"controllers"`
	TLS         TLS      `yaml:"tls"`
	SASL        SASL     `yaml:"sasl"`
	// DialTimeout bounds each connection attempt (default 5 s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ControllerSecurity is how fleetd connects to the controllers when it
	// differs from the brokers' (nil: the same). A KRaft CONTROLLER
	// listener takes TLS but not SCRAM (SCRAM credentials live in the
	// metadata the controllers serve), so a cluster with SASL_SSL brokers
	// has controllers that want TLS alone.
	ControllerSecurity *Security `yaml:"controller_security"`
}

// Security is a connection's TLS and SASL settings.
type Security struct {
	TLS  TLS  `yaml:"tls"`
	SASL SASL `yaml:"sasl"`
}

// TLS enables TLS to the brokers. CAFile empty means the system roots.
type TLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// SASL configures SCRAM authentication. The password comes from the
// configuration's environment override, never from a command-line flag.
type SASL struct {
	Mechanism string `yaml:"mechanism"` // SCRAM-SHA-256 or SCRAM-SHA-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// Validate reports the first setting that cannot work, naming it.
func (s Settings) Validate() error {
	if len(s.Bootstrap) == 0 {
		return errors.New("kafka.bootstrap: at least one bootstrap server (host:port) is required")
	}
	for key, addrs := range map[string][]string{"kafka.bootstrap": s.Bootstrap, "kafka.controllers": s.Controllers} {
		for _, b := range addrs {
			if err := checkAddr(b); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
	}
	if s.DialTimeout < 0 {
		return fmt.Errorf("kafka.dial_timeout: %s is negative", s.DialTimeout)
	}
	if err := (Security{s.TLS, s.SASL}).validate("kafka", "FLEETD_KAFKA_SASL_PASSWORD"); err != nil {
		return err
	}
	if cs := s.ControllerSecurity; cs != nil {
		if len(s.Controllers) == 0 {
			return errors.New("kafka.controller_security: set only with kafka.controllers")
		}
		return cs.validate("kafka.controller_security", "FLEETD_KAFKA_CONTROLLER_SASL_PASSWORD")
	}
	return nil
}

// validate checks one connection's settings; prefix names their keys.
func (c Security) validate(prefix, passwordEnv string) error {
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("%s.tls: cert_file and key_file must be given together", prefix)
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		if c.SASL.Username != "" {
			return fmt.Errorf("%s.sasl.mechanism: required when a username is set (SCRAM-SHA-256 or SCRAM-SHA-512)", prefix)
		}
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" || c.SASL.Password == "" {
			return fmt.Errorf("%s.sasl: username and password are required for SCRAM (password via %s)", prefix, passwordEnv)
		}
	default:
		return fmt.Errorf("%s.sasl.mechanism: %q is not supported (want SCRAM-SHA-256 or SCRAM-SHA-512)", prefix, c.SASL.Mechanism)
	}
	return nil
}

// checkAddr: host:port with a port from 1 to 65535.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q: want host:port (%v)", a, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", a, port)
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n/") {
		return fmt.Errorf("%q: %q is not a host name", a, host)
	}
	return nil
}

// Opts turns settings into kgo options.
func (s Settings) Opts() ([]kgo.Opt, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	dial := s.DialTimeout
	if dial <= 0 {
		dial = 5 * time.Second
	}
	opts := []kgo.Opt{kgo.SeedBrokers(s.Bootstrap...), kgo.DialTimeout(dial)}
	if s.TLS.Enabled || s.TLS.CAFile != "" || s.TLS.CertFile != "" {
		cfg, err := s.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s.SASL.Mechanism != "" {
		auth := scram.Auth{User: s.SASL.Username, Pass: s.SASL.Password}
		if strings.ToUpper(s.SASL.Mechanism) == "SCRAM-SHA-512" {
			opts = append(opts, kgo.SASL(auth.AsSha512Mechanism()))
		} else {
			opts = append(opts, kgo.SASL(auth.AsSha256Mechanism()))
		}
	}
	return opts, nil
}

func (t TLS) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ControllerClient connects to the controllers, or returns nil when none are
// configured. Close it.
func (s Settings) ControllerClient() (*kgo.Client, error) {
	if len(s.Controllers) == 0 {
		return nil, nil
	}
	c := s
	c.Bootstrap = s.Controllers
	if cs := s.ControllerSecurity; cs != nil {
		c.TLS, c.SASL = cs.TLS, cs.SASL
	}
	c.ControllerSecurity = nil
	opts, err := c.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka controller client: %w", err)
	}
	return cl, nil
}

// Clients connects to the brokers and, when configured, to the controllers
// (nil otherwise). closeAll closes whatever was opened.
func (s Settings) Clients() (brokers, controllers *kgo.Client, closeAll func(), err error) {
	brokers, _, err = s.Admin()
	if err != nil {
		return nil, nil, func() {}, err
	}
	controllers, err = s.ControllerClient()
	if err != nil {
		brokers.Close()
		return nil, nil, func() {}, err
	}
	return brokers, controllers, func() {
		brokers.Close()
		if controllers != nil {
			controllers.Close()
		}
	}, nil
}

// Admin connects a client and an admin client. Close the *kgo.Client.
func (s Settings) Admin(extra ...kgo.Opt) (*kgo.Client, *kadm.Client, error) {
	opts, err := s.Opts()
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, kadm.NewClient(cl), nil
}
