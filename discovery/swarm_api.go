package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
)

// The listings of the Docker Engine API, reduced to the fields
// buildSwarmConfig reads. Field names and nesting are Docker's, so that the
// JSON decodes into them as it comes; everything else in a response (specs,
// container status, resources, placement: some 2 KB per task) is skipped
// instead of allocated. At 50,000 tasks that is the difference between
// hundreds of megabytes and tens.

// swarmService is the part of a swarm.Service that routes come from.
type swarmService struct {
	ID        string
	Version   swarm.Version // the store's index of its last write
	CreatedAt time.Time
	UpdatedAt time.Time
	Spec      serviceSpec
	Endpoint  struct {
		VirtualIPs []swarm.EndpointVirtualIP
	}
	UpdateStatus  *swarm.UpdateStatus
	ServiceStatus *swarm.ServiceStatus // listed with status=true
}

type serviceSpec struct {
	Name         string
	Labels       map[string]string
	TaskTemplate struct {
		Networks []swarm.NetworkAttachmentConfig
	}
	Networks     []swarm.NetworkAttachmentConfig // services created through the pre-1.25 API
	Mode         swarm.ServiceMode
	EndpointSpec *swarm.EndpointSpec
}

// swarmTask is the part of a swarm.Task that endpoints come from.
type swarmTask struct {
	ID                  string
	ServiceID           string
	NodeID              string
	DesiredState        swarm.TaskState
	Status              taskStatus
	NetworksAttachments []taskAttachment
}

type taskStatus struct {
	Timestamp       time.Time
	State           swarm.TaskState
	ContainerStatus *struct {
		ContainerID string // what a network disconnect event names
	}
}

type taskAttachment struct {
	Network   attachedNetwork
	Addresses []string // "10.0.1.5/24"
}

type attachedNetwork struct{ ID string }

// swarmNetwork is the part of a network.Summary that network choice reads.
type swarmNetwork struct {
	ID      string `json:"Id"`
	Name    string
	Ingress bool
}

// swarmNode is the part of a swarm.Node that rotation reads.
type swarmNode struct {
	ID     string
	Status swarm.NodeStatus
}

// swarmAPI makes the source's listing requests on the Docker client's own
// transport (same host, TLS, socket and tracing), and decodes each response
// as a stream, one array element at a time, into the small types above. It
// sends only what the Docker client would for the same listing (GET
// /services, /tasks, /networks, /nodes with filters), which the
// socket-proxy lets through.
type swarmAPI struct {
	cli    *client.Client
	hc     *http.Client
	scheme string // http or https
	addr   string // host:port, or the socket's path
	base   string // path prefix of a tcp:// host
	host   string // Host header; DummyHost for unix sockets and named pipes
	max    string // the client's API version: its default, or DOCKER_API_VERSION

	mu      sync.Mutex
	version string // negotiated with the engine; "" until then
}

func newSwarmAPI(cli *client.Client, tls bool) (*swarmAPI, error) {
	u, err := client.ParseHostURL(cli.DaemonHost())
	if err != nil {
		return nil, fmt.Errorf("discovery: swarm: docker host: %w", err)
	}
	a := &swarmAPI{cli: cli, hc: cli.HTTPClient(), scheme: "http", addr: u.Host, base: strings.TrimSuffix(u.Path, "/"),
		max: cli.ClientVersion()}
	if tls {
		a.scheme = "https"
	}
	if u.Scheme == "unix" || u.Scheme == "npipe" {
		a.host = client.DummyHost
	}
	return a, nil
}

// usesTLS reports whether the client NewSwarm builds from o talks HTTPS:
// a TLS configuration given, or one the DOCKER_CERT_PATH convention loads.
func usesTLS(o SwarmOptions) bool {
	return o.TLS != nil || o.Host == "" && os.Getenv(client.EnvOverrideCertPath) != ""
}

// negotiate settles the API version as the client does: its own, lowered
// to the engine's when that is older. It pings once, then remembers.
func (a *swarmAPI) negotiate(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.version != "" {
		return a.version, nil
	}
	ping, err := a.cli.Ping(ctx)
	if err != nil {
		return "", err
	}
	v := a.max
	if ping.APIVersion != "" && (v == "" || versions.LessThan(ping.APIVersion, v)) {
		v = ping.APIVersion
	}
	if v == "" {
		v = "1.24" // engines that predate the version header
	}
	a.version = v
	return v, nil
}

// reset forgets the negotiated version: the engine behind the address may
// have changed across an outage.
func (a *swarmAPI) reset() {
	a.mu.Lock()
	a.version = ""
	a.mu.Unlock()
}

// apiError is a response other than 200 OK.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("Docker API: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

func isNotFound(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// get lists path (with filters f, and the extra query pairs kv) and decodes
// the array it answers one element at a time, each into a new T passed to
// add. The response is never held whole: a 100 MB task listing costs
// the decoder's buffer of one task.
func get[T any](ctx context.Context, a *swarmAPI, path string, f filters.Args, add func(*T), kv ...string) error {
	v, err := a.negotiate(ctx)
	if err != nil {
		return err
	}
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	if f.Len() > 0 {
		js, err := filters.ToJSON(f)
		if err != nil {
			return err
		}
		q.Set("filters", js)
	}
	u := url.URL{Path: a.base + "/v" + strings.TrimPrefix(v, "v") + path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	// Set after parsing, as the Docker client does: a socket's path is no
	// valid URL host, and the client's transport dials the socket anyway.
	req.URL.Scheme, req.URL.Host = a.scheme, a.addr
	if a.host != "" {
		req.Host = a.host
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() {
		// Drain what is left (a newline) so that the connection is reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var msg struct{ Message string }
		if json.Unmarshal(body, &msg) != nil || msg.Message == "" {
			msg.Message = strings.TrimSpace(string(body))
		}
		return &apiError{Status: resp.StatusCode, Message: msg.Message}
	}
	return decodeArray(resp.Body, add)
}

// decodeArray decodes a JSON array from r, element by element.
func decodeArray[T any](r io.Reader, add func(*T)) error {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // null
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("want a JSON array, got %v", tok)
	}
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		add(&v)
	}
	_, err = dec.Token() // ]
	return err
}
