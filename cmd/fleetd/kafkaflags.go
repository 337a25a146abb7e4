package main

import (
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/fleetd/fleetd/internal/config"
	"github.com/fleetd/fleetd/internal/kclient"
)

// kafkaFlags are the connection flags every Kafka-facing command shares.
// Precedence: flags, then environment, then the config file.
type kafkaFlags struct {
	configPath    string
	bootstrap     []string
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	tlsServerName string
	saslMechanism string
	saslUser      string
	timeout       time.Duration
}

func (k *kafkaFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&k.configPath, "config", os.Getenv("FLEETD_CONFIG"), "fleetd config file (env FLEETD_CONFIG); its kafka section is used")
	fs.StringSliceVar(&k.bootstrap, "bootstrap", nil, "Kafka bootstrap servers, host:port,... (env "+config.EnvBootstrap+")")
	fs.BoolVar(&k.tls, "tls", false, "connect with TLS (system roots unless --tls-ca)")
	fs.StringVar(&k.tlsCA, "tls-ca", "", "PEM file of CA certificates to trust")
	fs.StringVar(&k.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&k.tlsKey, "tls-key", "", "PEM client key for mutual TLS")
	fs.StringVar(&k.tlsServerName, "tls-server-name", "", "server name to verify, if not the bootstrap host")
	fs.StringVar(&k.saslMechanism, "sasl-mechanism", "", "SCRAM-SHA-256 or SCRAM-SHA-512 (password from env "+config.EnvSASLPassword+")")
	fs.StringVar(&k.saslUser, "sasl-username", "", "SASL/SCRAM user name")
	fs.DurationVar(&k.timeout, "timeout", 15*time.Second, "give up on Kafka after this long")
}

// settings resolves the connection settings.
func (k *kafkaFlags) settings() (kclient.Settings, error) {
	var s kclient.Settings
	if k.configPath != "" {
		c, err := config.Load(k.configPath)
		if err != nil {
			return s, err
		}
		s = c.Kafka
	} else {
		c := &config.Config{}
		c.ApplyEnv(os.Getenv)
		s = c.Kafka
	}
	if len(k.bootstrap) > 0 {
		s.Bootstrap = k.bootstrap
	}
	if k.tls {
		s.TLS.Enabled = true
	}
	for dst, v := range map[*string]string{&s.TLS.CAFile: k.tlsCA, &s.TLS.CertFile: k.tlsCert, &s.TLS.KeyFile: k.tlsKey, &s.TLS.ServerName: k.tlsServerName, &s.SASL.Mechanism: k.saslMechanism, &s.SASL.Username: k.saslUser} {
		if v != "" {
			*dst = v
		}
	}
	if s.SASL.Password == "" {
		s.SASL.Password = os.Getenv(config.EnvSASLPassword)
	}
	if err := s.Validate(); err != nil {
		if len(s.Bootstrap) == 0 {
			return s, &codeError{code: exitError, err: err}
		}
		return s, err
	}
	return s, nil
}
