// Package route is the route model every other package speaks: a Route is one
// published route of one service, a Config is the whole desired state of a
// source. It is a leaf: it imports only the standard library, so the data
// plane links neither the Docker SDK nor any source.
package route

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Label values for Route fields that take a keyword.
const (
	BackendTask = "task" // task addresses, balanced by the edge
	BackendVIP  = "vip"  // the service's virtual IP, balanced by Swarm

	TLSOff         = "off"
	TLSAuto        = "auto"        // certificate from ACME
	TLSPassthrough = "passthrough" // no termination, routed by SNI

	BackendTLSOff      = "off"
	BackendTLSOn       = "on"
	BackendTLSInsecure = "insecure" // re-encrypt without verifying the task's certificate

	DefaultCluster = "" // routes without swarmgate.cluster
)

// Balancer names accepted by swarmgate.balancer.
const (
	BalancerRoundRobin = "round-robin"
	BalancerLeastConn  = "least-conn"
	BalancerP2C        = "p2c" // the default
	BalancerIPHash     = "ip-hash"
	BalancerCookie     = "cookie"
)

// Balancers lists every balancer name, sorted.
func Balancers() []string {
	return []string{BalancerCookie, BalancerIPHash, BalancerLeastConn, BalancerP2C, BalancerRoundRobin}
}

// Defaults applied where a label is not set. They are spelled here only.
const (
	DefaultWeight   = 100
	DefaultTimeout  = 60 * time.Second // upstream response timeout
	DefaultBalancer = BalancerP2C
	// DefaultHealthInterval is the active health check period when
	// swarmgate.health.path is set without swarmgate.health.interval.
	DefaultHealthInterval = 10 * time.Second
	// DefaultHealthTimeout bounds one active health check request.
	DefaultHealthTimeout = 5 * time.Second
)

// Route is one published route of one service: the result of parsing its labels
// and resolving its endpoints. A service yields one route per route name.
//
// A route with Exact set matches a request path equal to Path only, as
// Traefik's Path() and NGINX's "location = /x" do, where a prefix route
// matches Path and the paths below it on segment boundaries. An exact and a
// prefix route of the same host and path are two routes, in two weighted
// groups; for that path the exact one wins, whatever their priorities, as
// "location = /x" wins over "location /x".
type Route struct {
	Service   string    // service name
	ServiceID string    // Swarm service ID; empty for the routes file
	Name      string    // route name: "" for the default route, else <name> of swarmgate.routes.<name>.*
	CreatedAt time.Time // older routes win ties; zero sorts first

	Hosts    []string // lower-case host names, "*.example.org" wildcards; empty for pure L4 routes
	Path     string   // path prefix, "/" by default, no trailing slash otherwise; an exact path as written
	Exact    bool     // Path matches only itself, not the paths below it (see Route)
	Strip    bool     // strip Path before forwarding
	Priority int      // higher wins among routes that match equally
	Weight   int      // share within a weighted group (same host+path); 0 drains
	Default  bool     // serves hosts that no route claims

	Port     int    // container port that traffic goes to
	Backend  string // BackendTask or BackendVIP
	Network  string // overlay network whose addresses are used; "" means the one shared with the edge
	Balancer string // round-robin, least-conn, p2c, ip-hash, cookie
	Sticky   string // session-affinity cookie name; "" is off

	TLS         string // TLSOff, TLSAuto, TLSPassthrough or a certificate name
	TLSRedirect bool   // redirect plain HTTP to HTTPS
	HSTS        string // Strict-Transport-Security value sent over HTTPS; "" is none
	BackendTLS  string // BackendTLSOff, BackendTLSOn or BackendTLSInsecure
	H2C         bool   // cleartext HTTP/2 to the tasks

	HealthPath     string        // active health check path; "" is passive only
	HealthInterval time.Duration // active health check period
	Timeout        time.Duration // upstream response timeout
	// StreamBody sends request bodies to the task from their first byte
	// instead of reading up to the edge's request buffer first (uploads the
	// task reads as they arrive).
	StreamBody bool

	Redirects []Redirect
	Cluster   string // service cluster; DefaultCluster when unset

	// Policy is what the edge does to a request before it is forwarded
	// (access lists, auth, rate and body limits, headers, CORS, compression);
	// nil is none, and costs a request nothing.
	Policy *Policy

	TCPPort int      // L4: edge listens on this port and forwards raw TCP to Port
	SNI     []string // L4: TLS server names routed on :443 without termination
	// ProxyProtocol is the PROXY protocol version (1 or 2) sent to the tasks
	// of an L4 route before the client's bytes; 0 is off.
	ProxyProtocol int

	// Endpoints are the "host:port" addresses of the tasks in rotation (or the VIP),
	// filled in by the source after parsing.
	Endpoints []string
}

// ID names a route for logs, metrics and the admin API: "service" or "service/name".
func (r *Route) ID() string {
	if r.Name == "" {
		return r.Service
	}
	return r.Service + "/" + r.Name
}

// IsHTTP reports whether the route is served by the HTTP router.
func (r *Route) IsHTTP() bool {
	return len(r.Hosts) > 0 && r.TLS != TLSPassthrough || r.Default
}

// Redirect is one swarmgate.redirects rule: requests whose "scheme://host/path"
// (or path, when From starts with "/") begins with From, on a segment
// boundary, are redirected to To plus the rest of the path and the query.
type Redirect struct {
	From string
	To   string
	Code int // 301 or 302
}

// Policy holds the parsed values of a route's policy labels. The zero value
// of each field is off. Package policy parses the values and serves them.
type Policy struct {
	Allow []netip.Prefix // client addresses let in; empty is everyone
	Deny  []netip.Prefix // client addresses refused, before Allow

	BasicAuth  string // htpasswd file name in the secrets directory; "" is off
	BasicRealm string // WWW-Authenticate realm; "" is the route ID
	// BasicUsers are swarmgate.auth.users (Traefik's basicauth.users):
	// users given in the labels, besides those of BasicAuth's file.
	BasicUsers []BasicUser

	// ForwardAuth is the URL of an auth service asked about every request
	// (its method, URI and fields, no body); "" is off. ForwardAuthHeaders
	// are the fields of a 2xx answer set on the request (canonical).
	ForwardAuth        string
	ForwardAuthHeaders []string

	RateLimit Rate // per client address; a zero N is off

	BodyMax int64 // request body limit in bytes; 0 is off

	RequestHeaders  []Header // set on the request before it is forwarded
	ResponseHeaders []Header // set on the response before it is sent

	CORS CORS // off without Origins

	// Compress lists the response encodings offered ("zstd", "br",
	// "gzip"), the edge's preference first; empty is off.
	Compress []string

	// MatchHeader and MatchCookie make the route take, within its weighted
	// group (the routes of the same host, path and priority), exactly the
	// requests that carry the field or cookie Name with the value Value,
	// whatever the weights; a zero Name is off. With both, a request must
	// match both.
	MatchHeader Match
	MatchCookie Match

	// ErrorPage is an HTML file in the secrets or configs directory sent
	// instead of the proxy's own plain-text 502, 503 and 504 answers to
	// clients that accept text/html; "" is off.
	ErrorPage string
}

// BasicUser is one user:hash of swarmgate.auth.users. The hash is a
// Secret: no JSON form of a route and no fmt verb shows it, so a route
// printed for an operator (the admin API, check, a log line) names the user
// only. The control plane's stream carries hashes in a field of its own.
type BasicUser struct {
	Name string
	Hash Secret `json:"-"`
}

// Secret is a value never shown: fmt prints it, and text and JSON encoders
// encode it, as "(withheld)". Convert it to a string to use it.
type Secret string

const withheld = "(withheld)"

func (Secret) String() string                { return withheld }
func (Secret) GoString() string              { return withheld }
func (Secret) MarshalText() ([]byte, error)  { return []byte(withheld), nil }
func (Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, withheld) }

// Match is a swarmgate.match.header or swarmgate.match.cookie label.
type Match struct {
	Name  string // a canonical field name, or a cookie name
	Value string
}

// Rate is a swarmgate.ratelimit: N requests per Per on average, up to
// Burst of them at once.
type Rate struct {
	N     int
	Per   time.Duration // time.Second, time.Minute or time.Hour
	Burst int
}

// String is the rate as its label writes it: "20/s", "100/m", "5/h".
func (r Rate) String() string {
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return strconv.Itoa(r.N) + "/" + unit
}

// Header is one swarmgate.headers.request.<Name> or
// swarmgate.headers.response.<Name> label: set Name to Value, or remove it
// when Value is "".
type Header struct {
	Name  string // canonical (textproto.CanonicalMIMEHeaderKey)
	Value string
}

// CORS is the swarmgate.cors.* labels.
type CORS struct {
	Origins     []string // lower-case "scheme://host[:port]", or "*"
	Methods     []string // allowed in preflights; empty is GET, HEAD, POST
	Headers     []string // request headers allowed in preflights, or "*"
	Credentials bool
	MaxAge      time.Duration // how long a preflight may be cached; 0 sends none
}

// LabelError says why one label of one service was rejected. The service is
// skipped; nothing else is affected.
type LabelError struct {
	Service string
	Label   string
	Value   string
	Reason  string
}

func (e *LabelError) Error() string {
	return fmt.Sprintf("service %q: label %s=%q: %s", e.Service, e.Label, e.Value, e.Reason)
}

// Config is the desired routing configuration at one point in time.
type Config struct {
	Routes []Route
	Errors []*LabelError // services skipped because of bad labels

	// Changed is when the source's backend reported the change this Config
	// brings (for Swarm, the time of the event, or the status timestamp of
	// the task a poll found), so that a consumer can measure change-to-table
	// latency. When one Config brings several changes it is the earliest of
	// them. It is metadata, not state: two Configs that differ only in
	// Changed describe the same routes. Zero if the source does not know.
	Changed time.Time

	// Gen and Delta are an optional hint, metadata like Changed, that lets
	// a consumer which derives its state from the Config before skip the
	// routes that did not change. Gen, when not zero, names this Config: a
	// source that sets it draws a new random one for every Config it hands
	// out, so that Configs of different sources never share one. A Config
	// made from other Configs (a merge, a filter) sets neither.
	Gen uint64
	// Delta, when not nil, is how Routes differ from those of the Config
	// whose Gen is Delta.From.
	Delta *Delta
}

// Delta is how a Config's routes differ from an earlier Config of the same
// source. A consumer that holds the earlier Config may take every route
// that Routes does not name as the Same as that Config's route of its ID; a
// consumer that does not hold it, or finds the hint inconsistent with what
// it holds, compares every route.
type Delta struct {
	From uint64 // the Gen of the earlier Config
	// Routes are the IDs (Route.ID) of every route added, removed or
	// changed since: a route not named is in both Configs and the Same
	// (Same) in both. Naming a route that did not change is allowed.
	Routes []string
}

// Source produces Configs. Run blocks until ctx is done, calling update with
// every new desired Config (the whole state of that source, never a delta).
// A Config is read-only: its slices may be shared with the source's state
// and with the Configs before and after it.
// A source that loses its backend keeps quiet (the last Config stays in force)
// and reconnects on its own.
type Source interface {
	Name() string
	Run(ctx context.Context, update func(Config)) error
}

// Reporter is a Source that reports how it is doing: the edge's /readyz
// and admin API show it. Status must be safe to call at any time, from any
// goroutine, and must not return secrets.
type Reporter interface {
	Source
	Status() SourceStatus
}

// SourceStatus is what a Reporter says of itself.
type SourceStatus struct {
	// Connected: the source is in step with its backend now.
	Connected bool `json:"connected"`
	// Synced: a Config has been delivered. It stays true while the backend
	// is away: the last Config stays in force.
	Synced bool `json:"synced"`
	// Detail is the source's own state (JSON-encodable), for the admin API.
	Detail any `json:"detail,omitempty"`
}
