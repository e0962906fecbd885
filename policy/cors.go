package policy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/swarmgate/swarmgate/route"
)

// The fields of the Fetch standard's CORS protocol
// (https://fetch.spec.whatwg.org/#http-cors-protocol).
const (
	hOrigin         = "Origin"
	hAllowOrigin    = "Access-Control-Allow-Origin"
	hAllowCreds     = "Access-Control-Allow-Credentials"
	hAllowMethods   = "Access-Control-Allow-Methods"
	hAllowHeaders   = "Access-Control-Allow-Headers"
	hMaxAge         = "Access-Control-Max-Age"
	hRequestMethod  = "Access-Control-Request-Method"
	hRequestHeaders = "Access-Control-Request-Headers"
)

// corsPolicy is a route.CORS prepared for requests.
type corsPolicy struct {
	any       bool // origins is "*"
	origins   []string
	methods   []string
	anyHeader bool
	headers   []string
	creds     bool
	allowM    string // Access-Control-Allow-Methods
	allowH    string // Access-Control-Allow-Headers, "" when anyHeader
	maxAge    string // Access-Control-Max-Age, or ""
}

// cors answers preflight requests at the edge (204 for an allowed origin,
// method and headers; 403 otherwise) and adds the CORS fields to the
// responses of allowed origins, over the upstream's own. Requests without
// an Origin pass untouched.
func cors(c *route.CORS, next http.Handler, reply replyFunc) http.Handler {
	p := &corsPolicy{
		any: c.Origins[0] == "*", origins: c.Origins, methods: c.Methods, creds: c.Credentials,
		anyHeader: len(c.Headers) == 1 && c.Headers[0] == "*", headers: c.Headers,
	}
	if len(p.methods) == 0 {
		p.methods = []string{http.MethodGet, http.MethodHead, http.MethodPost}
	}
	p.allowM = strings.Join(p.methods, ", ")
	if !p.anyHeader {
		p.allowH = strings.Join(p.headers, ", ")
	}
	if c.MaxAge > 0 {
		p.maxAge = strconv.Itoa(int(c.MaxAge.Seconds()))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get(hOrigin)
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := p.allows(origin)
		if r.Method == http.MethodOptions && r.Header.Get(hRequestMethod) != "" {
			p.preflight(w, r, origin, allowed, reply)
			return
		}
		next.ServeHTTP(&editWriter{ResponseWriter: w, edit: func(h http.Header) { p.actual(h, origin, allowed) }}, r)
	})
}

func (p *corsPolicy) allows(origin string) bool {
	return p.any || slices.Contains(p.origins, strings.ToLower(origin))
}

// setOrigin sets the fields that say origin may read the response.
func (p *corsPolicy) setOrigin(h http.Header, origin string) {
	if p.any && !p.creds {
		h.Set(hAllowOrigin, "*")
	} else {
		h.Set(hAllowOrigin, origin)
		h.Add("Vary", hOrigin)
	}
	if p.creds {
		h.Set(hAllowCreds, "true")
	}
}

func (p *corsPolicy) actual(h http.Header, origin string, allowed bool) {
	// The edge is the authority on CORS for this route: the upstream's own
	// fields go.
	h.Del(hAllowOrigin)
	h.Del(hAllowCreds)
	if allowed {
		p.setOrigin(h, origin)
	} else if !p.any {
		h.Add("Vary", hOrigin)
	}
}

func (p *corsPolicy) preflight(w http.ResponseWriter, r *http.Request, origin string, allowed bool, reply replyFunc) {
	h := w.Header()
	h.Set("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	method := r.Header.Get(hRequestMethod)
	var asked []string
	for _, f := range r.Header.Values(hRequestHeaders) {
		for name := range strings.SplitSeq(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				asked = append(asked, name)
			}
		}
	}
	switch {
	case !allowed:
		reply(w, r, http.StatusForbidden, "CORS preflight from an origin not in swarmgate.cors.origins")
		return
	case !slices.Contains(p.methods, method) && !simpleMethod(method):
		reply(w, r, http.StatusForbidden, "CORS preflight for a method not in swarmgate.cors.methods")
		return
	}
	if !p.anyHeader {
		for _, name := range asked {
			if !slices.ContainsFunc(p.headers, func(h string) bool { return strings.EqualFold(h, name) }) {
				reply(w, r, http.StatusForbidden, "CORS preflight for a header not in swarmgate.cors.headers")
				return
			}
		}
	}
	p.setOrigin(h, origin)
	h.Set(hAllowMethods, p.allowM)
	switch {
	case p.anyHeader && len(asked) > 0:
		// "*" is literal in a credentialed preflight; naming the fields
		// asked for works in both.
		h.Set(hAllowHeaders, strings.Join(asked, ", "))
	case p.allowH != "":
		h.Set(hAllowHeaders, p.allowH)
	}
	if p.maxAge != "" {
		h.Set(hMaxAge, p.maxAge)
	}
	reply(w, r, http.StatusNoContent, "CORS preflight")
}

// simpleMethod reports the CORS-safelisted methods, which need no preflight
// permission.
func simpleMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodPost
}
