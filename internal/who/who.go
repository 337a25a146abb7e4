// Package who carries the name of whoever asked for an act (pause, resume,
// cancel, abort, a throttle change) from the API to the log lines, events
// and records that act leaves, so an SRE reading them later knows who did it.
//
// The name is what the client declared (the CLI sends user@host, the status
// page "status page") joined to the address it came from: the API has one
// shared token, so the declared part is a label, not an identity.
package who

import (
	"context"
	"strings"
	"unicode"
)

type key struct{}

// Unknown is From's answer for a context that carries no name (an act
// started inside fleetd, or a test).
const Unknown = "an operator"

// MaxLen bounds a declared name; longer ones are cut.
const MaxLen = 64

// With returns ctx carrying name.
func With(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, key{}, name)
}

// From is the name ctx carries, or Unknown.
func From(ctx context.Context) string {
	if s, ok := ctx.Value(key{}).(string); ok && s != "" {
		return s
	}
	return Unknown
}

// Clean makes a client's declared name safe to log and show: printable
// characters only (no newlines or escapes that could forge a log line or
// a Slack message), trimmed, at most MaxLen runes.
func Clean(declared string) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(declared) {
		if n == MaxLen {
			break
		}
		if !unicode.IsPrint(r) || strings.ContainsRune("`<>*_~|", r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
