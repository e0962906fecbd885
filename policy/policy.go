// Package policy applies a route's policy labels to its requests: access
// lists, rate limits, CORS, basic and forward auth, body limits, header
// rewriting and compression, each a pure parser of its label values and an http.Handler
// that wraps the next one. Build wraps a route's handler once per table, so
// a request pays only for the policies its route has.
package policy

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// Options configure Build. The zero value of each field is a working default.
type Options struct {
	// SecretsDir is where swarmgate.auth.basic files are read. If empty,
	// /run/secrets, where Docker secrets attached to the edge appear.
	SecretsDir string
	// Now is the clock of the rate limits. If nil, time.Now.
	Now func() time.Time
	// Reply answers a request the policy refuses (401, 403, 413, 429) or
	// answers itself (a CORS preflight's 204), once the policy has set its
	// own header fields; reason is for the log. Every answer of a policy
	// goes through it. If nil, the status text is sent as text/plain.
	Reply func(w http.ResponseWriter, r *http.Request, code int, reason string)
	// Limits keeps rate-limit state across builds, so that a new table does
	// not hand every client a fresh burst. If nil, each Build starts afresh.
	Limits *Limits
	// Relay sends the client an answer the policy got from elsewhere, as
	// it is: forward auth's refusals (a redirect to a login page), whose
	// header fields are set already. reason is for the log. If nil, the
	// status and body are written as they are.
	Relay func(w http.ResponseWriter, r *http.Request, code int, body []byte, reason string)
	// AuthTransport carries swarmgate.auth.forward requests; it is asked
	// with RoundTrip, so redirects are answers, not followed. If nil,
	// http.DefaultTransport.
	AuthTransport http.RoundTripper
	// AuthTimeout bounds one exchange with an auth service. If zero,
	// DefaultAuthTimeout.
	AuthTimeout time.Duration
}

// Build returns next wrapped in the handlers p asks for, outermost first:
// access lists, CORS, rate limit, basic auth, forward auth, body limit,
// request headers, response headers, compression. id names the route (the
// default realm, the rate-limit state). A p that Wraps nothing (nil among
// them) returns next itself. The error is for a policy that cannot be
// served (an htpasswd file that is missing or holds a line it cannot
// check); the route must then not be served without it.
func Build(id string, p *route.Policy, next http.Handler, o Options) (http.Handler, error) {
	if !Wraps(p) {
		return next, nil
	}
	if o.Reply == nil {
		o.Reply = plainReply
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SecretsDir == "" {
		o.SecretsDir = "/run/secrets"
	}
	if o.Relay == nil {
		o.Relay = plainRelay
	}
	if o.AuthTransport == nil {
		o.AuthTransport = http.DefaultTransport
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	h := next
	if len(p.Compress) > 0 {
		h = compress(p.Compress, h)
	}
	if len(p.ResponseHeaders) > 0 {
		h = responseHeaders(p.ResponseHeaders, h)
	}
	if len(p.RequestHeaders) > 0 {
		h = requestHeaders(p.RequestHeaders, h)
	}
	if p.BodyMax > 0 {
		h = bodyLimit(p.BodyMax, h, o.Reply)
	}
	if p.ForwardAuth != "" {
		h = forwardAuth(p.ForwardAuth, p.ForwardAuthHeaders, o.AuthTransport, o.AuthTimeout, h, o.Reply, o.Relay)
	}
	if p.BasicAuth != "" || len(p.BasicUsers) > 0 {
		users, err := basicUsers(p, o.SecretsDir)
		if err != nil {
			return nil, err
		}
		realm := p.BasicRealm
		if realm == "" {
			realm = id
		}
		h = basicAuth(users, realm, h, o.Reply)
	}
	if p.RateLimit.N > 0 {
		var l *limiter
		if o.Limits != nil {
			l = o.Limits.get(id, p.RateLimit, o.Now)
		} else {
			l = newLimiter(p.RateLimit, o.Now, defaultMaxClients)
		}
		h = rateLimit(l, h, o.Reply)
	}
	if len(p.CORS.Origins) > 0 {
		h = cors(&p.CORS, h, o.Reply)
	}
	if len(p.Allow) > 0 || len(p.Deny) > 0 {
		h = accessList(p.Allow, p.Deny, h, o.Reply)
	}
	return h, nil
}

// basicUsers returns the users of p's basic auth by name: those of
// auth.users, then those of the auth.basic file, which win where a user is
// in both (as Traefik's usersFile wins over its users).
func basicUsers(p *route.Policy, dir string) (map[string]route.Secret, error) {
	users := make(map[string]route.Secret, len(p.BasicUsers))
	for _, u := range p.BasicUsers {
		// The label parser checked them; a routes file or a stream from
		// another version might not have.
		if _, err := hashKind(string(u.Hash)); err != nil {
			return nil, fmt.Errorf("policy: auth.users: user %q: %w", u.Name, err)
		}
		users[u.Name] = u.Hash
	}
	if p.BasicAuth == "" {
		return users, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, p.BasicAuth))
	if err != nil {
		return nil, fmt.Errorf("policy: auth.basic: %w", err)
	}
	file, err := ParseHtpasswd(data)
	if err != nil {
		return nil, fmt.Errorf("policy: auth.basic file %s: %w", p.BasicAuth, err)
	}
	for _, u := range file {
		users[u.Name] = u.Hash
	}
	return users, nil
}

// plainReply is the Reply of Options without one.
func plainReply(w http.ResponseWriter, _ *http.Request, code int, _ string) {
	if code < 400 {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code)+"\n")
}

// clientAddr is the client's address as the server saw it: the peer, or
// the address of a trusted PROXY protocol header (the l4 listener sets
// RemoteAddr from it). ok is false when RemoteAddr is no IP address.
func clientAddr(r *http.Request) (a netip.Addr, ok bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// editWriter runs edit on the header fields once, just before they are
// sent (the first WriteHeader of a final status, or the first Write).
type editWriter struct {
	http.ResponseWriter
	edit func(h http.Header)
	done bool
}

func (w *editWriter) WriteHeader(code int) {
	if !w.done && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.done = true
		w.edit(w.Header())
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *editWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered; http.ResponseController finds it.
func (w *editWriter) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (hijack for
// upgrades, deadlines).
func (w *editWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Wraps reports whether p asks for a handler in front of the route. Its
// match labels and error page are the proxy's to serve, so a route with
// only those is served as one without policies; Build returns next itself
// for it.
func Wraps(p *route.Policy) bool {
	if p == nil {
		return false
	}
	q := *p
	q.MatchHeader, q.MatchCookie, q.ErrorPage = route.Match{}, route.Match{}, ""
	return !reflect.ValueOf(q).IsZero()
}
