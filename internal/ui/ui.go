// Package ui is fleetd's status page: one HTML file with its style and
// script, embedded in the binary (no external assets: it works with no
// internet). The page holds no data: it reads the API (/v1/status,
// /v1/history, the /v1/events stream) with the bearer token the operator
// types in, kept in the tab's session storage and sent in a header, never
// in a URL. It must never bypass the API's rules: every change it makes is
// an API call any client could make.
package ui

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// Handler serves the page.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		// Only this page's own inline script and style; no frames, no
		// other origins: a token typed here can go nowhere else.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(page)
	})
}
