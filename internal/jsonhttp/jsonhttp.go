// Package jsonhttp is the one JSON-over-HTTP call fleetd's clients make (the
// daemon API client, the local fleet's control client): marshal the body,
// send it through a go-retryablehttp client, read a bounded answer.
package jsonhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/hashicorp/go-retryablehttp"
)

// Call sends in (nil: no body) to url with the given headers and returns the
// status code and up to limit bytes of the answer.
func Call(ctx context.Context, c *retryablehttp.Client, method, url string, headers map[string]string, in any, limit int64) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp.StatusCode, raw, err
}
