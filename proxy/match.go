package proxy

import (
	"net/http"
	"slices"

	"github.com/swarmgate/swarmgate/route"
)

// A member of a weighted group with swarmgate.match.header or
// swarmgate.match.cookie takes exactly the requests that match it, whatever
// the weights; the other members share the rest by weight. Testers reach a
// canary before any weight moves.

// matcher is a route's match labels.
type matcher struct {
	header, cookie route.Match
}

// newMatcher returns p's matcher, or nil for a route that matches every
// request.
func newMatcher(p *route.Policy) *matcher {
	if p == nil || p.MatchHeader.Name == "" && p.MatchCookie.Name == "" {
		return nil
	}
	return &matcher{header: p.MatchHeader, cookie: p.MatchCookie}
}

// matches reports whether r carries every field and cookie m asks for.
func (m *matcher) matches(r *http.Request) bool {
	if m.header.Name != "" && !slices.Contains(r.Header[m.header.Name], m.header.Value) {
		return false
	}
	if m.cookie.Name != "" && !slices.ContainsFunc(r.CookiesNamed(m.cookie.Name), func(c *http.Cookie) bool {
		return c.Value == m.cookie.Value
	}) {
		return false
	}
	return true
}
