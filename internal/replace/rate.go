package replace

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/dustin/go-humanize"
)

// Throttle is a replication throttle: unset (the default applies), none (no
// throttle), or a rate in bytes per second. Its zero value is unset.
type Throttle struct {
	kind throttleKind
	bps  int64
}

type throttleKind uint8

const (
	throttleUnset throttleKind = iota
	throttleNone
	throttleRate
)

// NoThrottle is "none": replicas are copied as fast as the brokers can.
func NoThrottle() Throttle { return Throttle{kind: throttleNone} }

// Rate is a throttle of bps bytes per second (bps > 0).
func Rate(bps int64) Throttle {
	if bps <= 0 {
		panic(fmt.Sprintf("replace.Rate(%d): a rate is positive; use NoThrottle for none", bps))
	}
	return Throttle{kind: throttleRate, bps: bps}
}

// ParseThrottle reads "none" or a positive size per second like 50MiB,
// 100MB or "50 MiB/s" (what String writes). A zero ("0", "0MiB") is
// refused: it has read as "no throttle" and as "the default", and a
// throttle must say which it means.
func ParseThrottle(s string) (Throttle, error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") {
		return NoThrottle(), nil
	}
	v, err := humanize.ParseBytes(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	switch {
	case err != nil:
		return Throttle{}, fmt.Errorf("%q is not a rate like 50MiB (per second), or none", s)
	case v == 0:
		return Throttle{}, fmt.Errorf("%q is zero: write none for no throttle, or a rate like 50MiB", s)
	case v > math.MaxInt64:
		return Throttle{}, fmt.Errorf("%q is too large", s)
	}
	return Rate(int64(v)), nil
}

// IsSet is false for the zero value (the default applies).
func (t Throttle) IsSet() bool { return t.kind != throttleUnset }

// IsNone reports "none".
func (t Throttle) IsNone() bool { return t.kind == throttleNone }

// BytesPerSec is the rate; ok is false for unset and none.
func (t Throttle) BytesPerSec() (bps int64, ok bool) { return t.bps, t.kind == throttleRate }

// Or is t, or d when t is unset.
func (t Throttle) Or(d Throttle) Throttle {
	if t.IsSet() {
		return t
	}
	return d
}

// IsZero makes an unset throttle omitted from JSON (omitzero).
func (t Throttle) IsZero() bool { return !t.IsSet() }

func (t Throttle) String() string {
	switch t.kind {
	case throttleNone:
		return "none"
	case throttleRate:
		// Exact, so that what is printed (a flag's default, a log line)
		// parses back to the same rate.
		for _, u := range []struct {
			n    int64
			name string
		}{{1 << 30, "GiB"}, {1e9, "GB"}, {1 << 20, "MiB"}, {1e6, "MB"}, {1 << 10, "KiB"}, {1e3, "kB"}} {
			if t.bps%u.n == 0 {
				return fmt.Sprintf("%d%s/s", t.bps/u.n, u.name)
			}
		}
		return fmt.Sprintf("%dB/s", t.bps)
	}
	return "default"
}

// MarshalJSON writes "none", a number of bytes per second, or null (unset).
func (t Throttle) MarshalJSON() ([]byte, error) {
	switch t.kind {
	case throttleNone:
		return []byte(`"none"`), nil
	case throttleRate:
		return json.Marshal(t.bps)
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads what MarshalJSON writes, and a string rate like
// "20MiB" (what an operator types).
func (t *Throttle) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = Throttle{}
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		if n <= 0 {
			return fmt.Errorf("throttle %d: a rate is positive bytes per second, or \"none\"", n)
		}
		*t = Rate(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("throttle: want a rate like \"50MiB\", bytes per second, or \"none\"")
	}
	v, err := ParseThrottle(s)
	if err != nil {
		return fmt.Errorf("throttle: %w", err)
	}
	*t = v
	return nil
}
