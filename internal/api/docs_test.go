package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// Every endpoint docs/api.md lists answers as documented, and every
// example request body it shows is accepted as written: the documentation
// cannot drift from the server.
func TestDocumentedRequestsAreAccepted(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(GET|POST) (/v1/[^`]*)` \\| ([^|]*)\\|")
	body := regexp.MustCompile("`(\\{[^`]*\\})`")
	rows := row.FindAllStringSubmatch(string(doc), -1)
	if len(rows) < 8 {
		t.Fatalf("docs/api.md lists %d /v1 endpoints; the table was not found", len(rows))
	}
	b := &fakeBackend{running: true}
	srv := httptest.NewServer((&Server{Backend: b, Token: "tok-0123456789abcdef", Log: zerolog.Nop(), Metrics: http.NotFoundHandler(), Events: NewHub()}).Handler())
	defer srv.Close()
	for _, r := range rows {
		method, path, cell := r[1], r[2], r[3]
		path = strings.NewReplacer("{id}", "r-1", "?limit=N", "?limit=5").Replace(path)
		if strings.HasPrefix(path, "/v1/queue/") {
			path = strings.Replace(path, "r-1", "q-1", 1)
		}
		var payload string
		if m := body.FindStringSubmatch(cell); m != nil {
			payload = m[1]
		}
		t.Run(method+" "+path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(payload))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer tok-0123456789abcdef")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				t.Errorf("%s %s with the documented body %s: %d", method, path, payload, resp.StatusCode)
			}
		})
	}
}
