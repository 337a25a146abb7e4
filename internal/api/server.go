package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/who"
)

// Server serves the API, /metrics, /healthz and /readyz.
type Server struct {
	Backend Backend
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every /v1 request. Serve refuses a non-loopback listener without one.
	Token   string
	Metrics http.Handler
	Log     zerolog.Logger
	// Events, if set, is streamed at GET /v1/events.
	Events *Hub
	// UI, if set, is the status page at GET /. It carries no data (the page
	// reads /v1 with the token), so it needs none.
	UI http.Handler
}

// maxBody bounds request bodies: every request is a few fields.
const maxBody = 64 << 10

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Backend.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	v1 := http.NewServeMux()
	v1.HandleFunc("GET /v1/status", s.status)
	v1.HandleFunc("GET /v1/events", s.events)
	v1.HandleFunc("GET /v1/history", s.history)
	v1.HandleFunc("GET /v1/replacements/{id}", s.replacement)
	v1.HandleFunc("POST /v1/replacements", s.request)
	v1.HandleFunc("POST /v1/abort", s.abort)
	v1.HandleFunc("POST /v1/queue/{id}/cancel", s.cancel)
	v1.HandleFunc("POST /v1/throttle", s.throttle)
	v1.HandleFunc("POST /v1/pause", s.pause(true))
	v1.HandleFunc("POST /v1/resume", s.pause(false))
	v1.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, Errorf(http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s (see docs/api.md)", r.Method, r.URL.Path)))
	})
	mux.Handle("/v1/", s.auth(v1))
	if s.UI != nil {
		mux.Handle("GET /{$}", s.UI)
	}
	return s.logged(mux)
}

// Serve serves on l until ctx ends, then shuts down within 10 s.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.Token == "" && !Loopback(l.Addr().String()) {
		return fmt.Errorf("api: refusing to serve on %s without a token: set api.token (FLEETD_API_TOKEN) or listen on 127.0.0.1", l.Addr())
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		return nil
	}
}

// Loopback reports whether a listen address ("host:port") is loopback only.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fleetd"`)
				writeError(w, Errorf(http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <api.token> (the CLI reads FLEETD_API_TOKEN)"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) { w.code = c; w.ResponseWriter.WriteHeader(c) }

// Unwrap lets http.ResponseController reach the connection (the event
// stream flushes and extends its write deadline through it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logged logs every API call except probes and scrapes (never the token):
// a call that changes something at info, a failed one at warn, and reads
// (a status page polls them) at debug, so they do not drown the rest.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		by := actorOf(r)
		r = r.WithContext(who.With(r.Context(), by))
		next.ServeHTTP(sw, r)
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			ev := s.Log.Info()
			switch {
			case sw.code >= 400:
				ev = s.Log.Warn()
			case r.Method == http.MethodGet || r.Method == http.MethodHead:
				ev = s.Log.Debug()
			}
			ev.Str("method", r.Method).Str("path", r.URL.Path).Int("code", sw.code).Str("by", by).Float64("took_seconds", time.Since(start).Seconds()).Msg("api")
		}
	})
}

// ActorHeader is the request header in which a client says who is acting
// (the CLI sends user@host, or its --as; the status page "status page").
const ActorHeader = "X-Fleetd-Actor"

// actorOf names whoever sent r for the log lines, events and records its
// act leaves: the declared name (a label: the token is shared) and the
// address it came from, which is not the client's to choose.
func actorOf(r *http.Request) string {
	if name := who.Clean(r.Header.Get(ActorHeader)); name != "" {
		return name + " (from " + r.RemoteAddr + ")"
	}
	return "a client at " + r.RemoteAddr
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := statusOf(err)
	msg := err.Error()
	writeJSON(w, code, &Error{Msg: msg})
}

// decode reads a strict JSON body into v; an empty body leaves v as is.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "bad request body: "+err.Error())
	}
	// One JSON value and nothing after it: trailing bytes mean the body is
	// not what the client thinks it sent.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(http.StatusBadRequest, "bad request body: data after the JSON value")
	}
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.Backend.Status(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, Errorf(http.StatusBadRequest, fmt.Sprintf("limit %q: want a number from 1 to 1000", v)))
			return
		}
		limit = n
	}
	recs, err := s.Backend.History(r.Context(), limit)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]HistoryEntry, 0, len(recs))
	for _, rec := range recs {
		out = append(out, NewHistoryEntry(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) replacement(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := replace.CheckID(id); err != nil {
		writeError(w, Errorf(http.StatusBadRequest, err.Error()))
		return
	}
	rec, err := s.Backend.Replacement(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, NewHistoryEntry(rec))
}

func (s *Server) request(w http.ResponseWriter, r *http.Request) {
	var req ReplaceRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case req.Broker == nil:
		writeError(w, Errorf(http.StatusBadRequest, `"broker" is required: the node id of the broker to replace`))
		return
	case *req.Broker < 0:
		writeError(w, Errorf(http.StatusBadRequest, fmt.Sprintf("broker %d: node ids are not negative", *req.Broker)))
		return
	}
	if err := replace.CheckRequest(replace.Request{Strategy: replace.Strategy(req.Strategy), Order: req.Order, Concurrency: req.Concurrency}); err != nil {
		writeError(w, Errorf(http.StatusBadRequest, err.Error()))
		return
	}
	switch {
	case len(req.Reason) > 1024:
		writeError(w, Errorf(http.StatusBadRequest, "reason: at most 1024 characters"))
		return
	}
	resp, err := s.Backend.Request(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	code := http.StatusAccepted
	if req.DryRun {
		code = http.StatusOK
	}
	writeJSON(w, code, resp)
}

func (s *Server) abort(w http.ResponseWriter, r *http.Request) {
	var req AbortRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.Backend.Abort(r.Context(), req.Reason)
	if err != nil {
		writeError(w, err)
		return
	}
	if !resp.Aborted {
		writeError(w, Errorf(http.StatusConflict, "no replacement is running: nothing to abort (queued requests stay queued; pause stops new ones)"))
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	var req CancelRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	q, err := s.Backend.Cancel(r.Context(), r.PathValue("id"), req.Reason)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, CancelResponse{Cancelled: q})
}

func (s *Server) throttle(w http.ResponseWriter, r *http.Request) {
	var req ThrottleRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !req.Throttle.IsSet() {
		writeError(w, Errorf(http.StatusBadRequest, `"throttle" is required: a rate like "20MiB", or "none"`))
		return
	}
	res, err := s.Backend.SetThrottle(r.Context(), req.Throttle)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) pause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.Backend.SetPaused(r.Context(), paused); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, PauseResponse{Paused: paused})
	}
}
