package config

import (
	"strings"
	"testing"
)

// FuzzParse: any file either is refused with an error or yields a config
// that passes its own validation and holds no zero where a zero means
// nothing. Never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "replace:\n  throttle: none\n  concurrency: 3\n"))
	f.Add([]byte(minimal + "replace:\n  throttle: 0\n"))
	f.Add([]byte(minimal + "chaos:\n  enabled: true\n  cron: \"0 10 30 2 *\"\n"))
	f.Add([]byte(minimal + "api:\n  listen: 0.0.0.0:7080\n  token: x\n"))
	f.Add([]byte("cluster: [\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseWith(raw, "fuzz.yaml", nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config its own validation refuses: %v", err)
		}
		if !c.Replace.Throttle.IsSet() || c.Replace.Concurrency < 1 || c.Lease.TTL <= 0 || c.Replace.Poll <= 0 {
			t.Fatalf("accepted a zero that means nothing: %+v", c.Replace)
		}
	})
}

// FuzzEnvironment: the environment overrides are outside input too.
func FuzzEnvironment(f *testing.F) {
	f.Add("a:1, b:2", "s3cret", "tok-0123456789abcdef")
	f.Add("host:notaport", "", "x")
	f.Add("", "", " ")
	f.Fuzz(func(t *testing.T, bootstrap, password, token string) {
		c := &Config{Cluster: "c1", EC2: EC2{LaunchTemplate: "lt"}}
		c.ApplyEnv(func(k string) string {
			return map[string]string{EnvBootstrap: bootstrap, EnvSASLPassword: password, EnvAPIToken: token}[k]
		})
		c.Defaults()
		if err := c.Validate(); err != nil {
			return
		}
		for _, b := range c.Kafka.Bootstrap {
			if strings.TrimSpace(b) != b || !strings.Contains(b, ":") {
				t.Fatalf("accepted bootstrap server %q", b)
			}
		}
	})
}
