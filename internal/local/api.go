package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/fleetd/fleetd/internal/jsonhttp"
	"github.com/fleetd/fleetd/internal/replace"
)

// The control API lets a separate process (fleetd replace, fleetd run) drive a
// fleet owned by another process (fleetd local up, a test), so that fleetd
// itself can be killed and restarted without taking the brokers with it.
//
//	GET    /v1/cluster                 bootstrap servers and cluster id
//	GET    /v1/instances               live instances
//	POST   /v1/instances               launch {token, node_id, zone, replacement_id, role}
//	POST   /v1/instances/{id}/stop     graceful stop
//	POST   /v1/instances/{id}/kill     SIGKILL (a sudden instance loss)
//	DELETE /v1/instances/{id}          terminate: kill and delete data

// ClusterInfo is what GET /v1/cluster answers.
type ClusterInfo struct {
	ClusterID   string   `json:"cluster_id"`
	Bootstrap   []string `json:"bootstrap"`
	Controllers []string `json:"controllers"`
}

type launchBody struct {
	Token         string `json:"token"`
	NodeID        int32  `json:"node_id"`
	Zone          string `json:"zone"`
	ReplacementID string `json:"replacement_id"`
	// Role is broker (default) or controller.
	Role replace.Role `json:"role,omitempty"`
}

// NewHandler serves the control API for p. Bind it to loopback only: it has
// no authentication.
func NewHandler(p *Provider) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/cluster", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, ClusterInfo{ClusterID: p.Fleet.ClusterID(), Bootstrap: p.Fleet.Bootstrap(), Controllers: p.Fleet.QuorumBootstrap()})
	})
	mux.HandleFunc("GET /v1/instances", func(w http.ResponseWriter, r *http.Request) {
		in, err := p.Instances(r.Context())
		reply(w, in, err)
	})
	mux.HandleFunc("POST /v1/instances", func(w http.ResponseWriter, r *http.Request) {
		var b launchBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Token == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be JSON with token, node_id and zone"})
			return
		}
		in, err := p.Launch(r.Context(), replace.LaunchRequest{Token: b.Token, NodeID: b.NodeID, Like: replace.Instance{Zone: b.Zone, Role: b.Role}, ReplacementID: b.ReplacementID})
		reply(w, in, err)
	})
	mux.HandleFunc("POST /v1/instances/{id}/stop", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, p.Stop(r.Context(), r.PathValue("id")))
	})
	mux.HandleFunc("POST /v1/instances/{id}/kill", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, p.Kill(r.PathValue("id")))
	})
	mux.HandleFunc("DELETE /v1/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, struct{}{}, p.Terminate(r.Context(), r.PathValue("id")))
	})
	return mux
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Remote is replace.Provider over a fleet's control API. Transient failures
// (connection errors, 5xx) are retried by go-retryablehttp; a 409 is the
// fleet's considered answer and is returned as an error at once.
type Remote struct {
	BaseURL string
	HTTP    *retryablehttp.Client
}

// NewRemote returns a client for the control API at baseURL.
func NewRemote(baseURL string) *Remote {
	c := retryablehttp.NewClient()
	c.RetryMax = 4
	c.RetryWaitMin = 200 * time.Millisecond
	c.RetryWaitMax = 3 * time.Second
	c.Logger = nil
	c.HTTPClient.Timeout = 3 * time.Minute // a launch waits for the broker to listen
	return &Remote{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: c}
}

func (r *Remote) do(ctx context.Context, method, path string, body, out any) error {
	code, raw, err := jsonhttp.Call(ctx, r.HTTP, method, r.BaseURL+path, nil, body, 1<<20)
	if err != nil {
		return fmt.Errorf("local fleet API %s %s: %w", method, path, err)
	}
	if code != http.StatusOK {
		var e struct{ Error string }
		_ = json.Unmarshal(raw, &e)
		return fmt.Errorf("local fleet API %s %s: %d %s: %s", method, path, code, http.StatusText(code), e.Error)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Cluster asks the fleet for its bootstrap servers.
func (r *Remote) Cluster(ctx context.Context) (ClusterInfo, error) {
	var ci ClusterInfo
	err := r.do(ctx, http.MethodGet, "/v1/cluster", nil, &ci)
	return ci, err
}

func (r *Remote) Instances(ctx context.Context) ([]replace.Instance, error) {
	var in []replace.Instance
	err := r.do(ctx, http.MethodGet, "/v1/instances", nil, &in)
	return in, err
}

func (r *Remote) Launch(ctx context.Context, req replace.LaunchRequest) (replace.Instance, error) {
	var in replace.Instance
	err := r.do(ctx, http.MethodPost, "/v1/instances", launchBody{Token: req.Token, NodeID: req.NodeID, Zone: req.Like.Zone, ReplacementID: req.ReplacementID, Role: req.Role()}, &in)
	return in, err
}

func (r *Remote) Stop(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodPost, "/v1/instances/"+id+"/stop", nil, nil)
}

func (r *Remote) Terminate(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodDelete, "/v1/instances/"+id, nil, nil)
}

// Kill SIGKILLs an instance's broker (tests, chaos drills).
func (r *Remote) Kill(ctx context.Context, id string) error {
	return r.do(ctx, http.MethodPost, "/v1/instances/"+id+"/kill", nil, nil)
}
