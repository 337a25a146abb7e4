package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// FuzzRequestBodies: any body sent to the mutating endpoints is answered
// with a 2xx or a 4xx that gives a reason, never a 5xx or a panic, and a
// request that reaches the backend names a broker that is not negative.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{`{"broker": 1}`, `{"broker": 1, "strategy": "identity", "dry_run": true}`, `{"broker": -1}`,
		`{"broker": 1} {"broker": 2}`, `{"reason": "maintenance"}`, ``, `{"broker": 1e99}`, `[`} {
		f.Add("/v1/replacements", seed)
		f.Add("/v1/abort", seed)
	}
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != "/v1/replacements" && path != "/v1/abort" && path != "/v1/pause" {
			path = "/v1/replacements"
		}
		b := &fakeBackend{}
		h := (&Server{Backend: b, Log: zerolog.Nop()}).Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body)
		case rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error"`):
			t.Fatalf("%s %q: %d without a reason: %s", path, body, rec.Code, rec.Body)
		}
		for _, r := range b.requests {
			if r.Broker == nil || *r.Broker < 0 {
				t.Fatalf("%q reached the backend as %+v", body, r)
			}
		}
	})
}
