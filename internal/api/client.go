package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/fleetd/fleetd/internal/jsonhttp"
	"github.com/fleetd/fleetd/internal/replace"
	"github.com/fleetd/fleetd/internal/who"
)

// Client talks to a running fleetd. Connection failures, 429, 502 and 504
// are retried a few times with backoff; every other answer is final.
type Client struct {
	base  *url.URL
	token string
	hc    *retryablehttp.Client
	// Actor is sent as X-Fleetd-Actor: who is acting, kept with the log
	// lines, events and records of pause, resume, cancel, abort and
	// throttle changes. Empty sends none (the daemon names the address).
	Actor string
}

// NewClient returns a client for the daemon at base (http://host:port).
func NewClient(base, token string, timeout time.Duration) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: want the daemon's URL, like http://127.0.0.1:7080", base)
	}
	hc := retryablehttp.NewClient()
	hc.Logger = nil
	hc.RetryMax = 3
	hc.RetryWaitMin, hc.RetryWaitMax = 200*time.Millisecond, 2*time.Second
	hc.HTTPClient.Timeout = timeout
	hc.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil {
			return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
		}
		switch resp.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
			return true, nil
		}
		return false, nil
	}
	hc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return &Client{base: u, token: token, hc: hc}, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	headers := map[string]string{}
	if c.token != "" {
		headers["Authorization"] = "Bearer " + c.token
	}
	if name := who.Clean(c.Actor); name != "" {
		headers[ActorHeader] = name
	}
	code, b, err := jsonhttp.Call(ctx, c.hc, method, c.base.String()+path, headers, in, 32<<20)
	if err != nil {
		return fmt.Errorf("fleetd at %s: %w", c.base.Host, err)
	}
	if code >= 300 {
		var e Error
		if json.Unmarshal(b, &e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(string(b))
		}
		e.Status = code
		e.Msg = fmt.Sprintf("fleetd at %s: %d %s: %s", c.base.Host, code, http.StatusText(code), e.Msg)
		return &e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("fleetd at %s: bad answer: %w", c.base.Host, err)
	}
	return nil
}

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// History is GET /v1/history.
func (c *Client) History(ctx context.Context, limit int) ([]HistoryEntry, error) {
	var h []HistoryEntry
	return h, c.do(ctx, http.MethodGet, "/v1/history?limit="+strconv.Itoa(limit), nil, &h)
}

// Replacement is GET /v1/replacements/{id}.
func (c *Client) Replacement(ctx context.Context, id string) (HistoryEntry, error) {
	var h HistoryEntry
	return h, c.do(ctx, http.MethodGet, "/v1/replacements/"+url.PathEscape(id), nil, &h)
}

// Replace is POST /v1/replacements.
func (c *Client) Replace(ctx context.Context, req ReplaceRequest) (ReplaceResponse, error) {
	var r ReplaceResponse
	return r, c.do(ctx, http.MethodPost, "/v1/replacements", req, &r)
}

// Abort is POST /v1/abort.
func (c *Client) Abort(ctx context.Context, reason string) (AbortResponse, error) {
	var r AbortResponse
	return r, c.do(ctx, http.MethodPost, "/v1/abort", AbortRequest{Reason: reason}, &r)
}

// Cancel is POST /v1/queue/{id}/cancel.
func (c *Client) Cancel(ctx context.Context, id, reason string) (CancelResponse, error) {
	var r CancelResponse
	return r, c.do(ctx, http.MethodPost, "/v1/queue/"+url.PathEscape(id)+"/cancel", CancelRequest{Reason: reason}, &r)
}

// SetThrottle is POST /v1/throttle.
func (c *Client) SetThrottle(ctx context.Context, t replace.Throttle) (replace.ThrottleResult, error) {
	var r replace.ThrottleResult
	return r, c.do(ctx, http.MethodPost, "/v1/throttle", ThrottleRequest{Throttle: t}, &r)
}

// SetPaused is POST /v1/pause or /v1/resume.
func (c *Client) SetPaused(ctx context.Context, paused bool) (PauseResponse, error) {
	var r PauseResponse
	path := "/v1/resume"
	if paused {
		path = "/v1/pause"
	}
	return r, c.do(ctx, http.MethodPost, path, nil, &r)
}
