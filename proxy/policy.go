package proxy

import (
	"context"
	"errors"
	"net/http"

	"github.com/swarmgate/swarmgate/policy"
)

// A route with policies (route.Policy) is served through a handler chain
// that package policy builds once per table, ending in forward. A route
// without them goes to forward directly and pays nothing.

// guardedKey is the context key of a guarded request's state.
type guardedKey struct{}

// guarded is what forward needs of a request that went through its
// route's policies.
type guarded struct {
	x    *exchange
	path string // the cleaned path, routed and forwarded
}

// guard reads tg's error page and returns its policy chain, or nil for a
// route without policies. A policy that cannot be served makes a handler
// that answers 503, and the error to report: a route is never served
// without the policies it asks for.
func (p *Proxy) guard(tg *target) (http.Handler, error) {
	pageErr := p.errorPage(tg)
	h, err := p.policies(tg)
	return h, errors.Join(err, pageErr)
}

// policies returns tg's policy chain, or nil for a route without policies,
// or a handler that answers 503 when a policy cannot be served.
func (p *Proxy) policies(tg *target) (http.Handler, error) {
	if !policy.Wraps(tg.route.Policy) {
		return nil, nil
	}
	end := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := r.Context().Value(guardedKey{}).(*guarded)
		p.forward(w, r, tg, g.path, g.x)
	})
	h, err := policy.Build(tg.id, tg.route.Policy, end, policy.Options{
		SecretsDir: p.secrets, Now: p.now, Reply: p.policyReply, Limits: p.limits,
		Relay: p.policyRelay, AuthTransport: p.tr.auth,
	})
	if err != nil {
		reason := "route policy unavailable: " + err.Error()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.policyReply(w, r, http.StatusServiceUnavailable, reason)
		}), err
	}
	return h, nil
}

// serveGuarded serves a request through its route's policies. They see
// the cleaned path, the one that is routed and forwarded: an auth service
// told /public/../admin would judge another path than the task gets.
func (p *Proxy) serveGuarded(w http.ResponseWriter, r *http.Request, tg *target, reqPath string, x *exchange) {
	ctx := context.WithValue(r.Context(), guardedKey{}, &guarded{x: x, path: reqPath})
	r = r.WithContext(ctx)
	if reqPath != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = reqPath, ""
		r.URL = &u
	}
	tg.guard.ServeHTTP(w, r)
}

// policyReply is policy.Options.Reply: the policies' own answers go through
// fail like every answer of the proxy, and are logged and counted with the
// exchange.
func (p *Proxy) policyReply(w http.ResponseWriter, r *http.Request, code int, reason string) {
	x := r.Context().Value(guardedKey{}).(*guarded).x
	if code >= 400 {
		p.fail(w, x, code, reason)
		return
	}
	x.status, x.reason = code, reason
	w.WriteHeader(code)
}

// policyRelay is policy.Options.Relay: an answer a policy passes on as it
// is (forward auth's refusals), logged and counted with the exchange.
func (p *Proxy) policyRelay(w http.ResponseWriter, r *http.Request, code int, body []byte, reason string) {
	x := r.Context().Value(guardedKey{}).(*guarded).x
	x.status, x.reason = code, reason
	w.WriteHeader(code)
	n, _ := w.Write(body)
	x.bytes = int64(n)
}

// pruneLimits forgets the rate-limit state of routes t no longer has.
func (p *Proxy) pruneLimits(t *Table) {
	p.limits.Keep(t.hasRoute)
}
