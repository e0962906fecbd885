package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// hopHeaders are the hop-by-hop fields of RFC 9110 section 7.6.1, plus the
// non-standard ones proxies have always removed. They describe one connection
// and must not be forwarded.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection", // non-standard, sent by old clients
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",      // canonicalised "TE"; "trailers" is put back by removeHopByHop
	"Trailer", // not hop-by-hop, but the transport adds its own
	"Transfer-Encoding",
	"Upgrade",
}

// forwardingHeaders are the fields the edge sets itself on every forwarded
// request. A client's Connection header cannot name them to have them
// removed: the backend must always see this hop's values.
var forwardingHeaders = map[string]bool{
	"X-Request-Id": true, "X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true,
	"X-Forwarded-Port": true, "X-Forwarded-Prefix": true, "X-Real-Ip": true, "Forwarded": true,
}

// removeHopByHop deletes the hop-by-hop fields and every field that the
// Connection header names (RFC 9110 section 7.6.1), except the forwarding
// headers the edge sets.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for _, name := range strings.Split(f, ",") {
			if name = textproto.TrimString(name); name != "" && !forwardingHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
				h.Del(name)
			}
		}
	}
	trailers := httpguts.HeaderValuesContainsToken(h["Te"], "trailers")
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if trailers {
		// gRPC needs "TE: trailers" end to end (RFC 9113 section 8.2.2).
		h["Te"] = []string{"trailers"}
	}
}

// upgradeType returns the protocol a client asks to switch to, or "".
// "h2c" is never passed on (RFC 9113 section 3.1 removed the upgrade; a 101
// from a backend would open a raw tunnel past the proxy's framing).
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	if u := h.Get("Upgrade"); !strings.EqualFold(textproto.TrimString(u), "h2c") {
		return u
	}
	return ""
}

// dropUnderscoreFields deletes the fields whose name has an underscore, as
// NGINX does by default (underscores_in_headers off): behind a backend that
// folds "_" to "-" (CGI, PHP, many frameworks), X_Forwarded_For would pose
// as X-Forwarded-For.
func dropUnderscoreFields(h http.Header) {
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 {
			delete(h, k)
		}
	}
}

// setForwarded sets the forwarding fields: the client address is appended
// to any chain the client sent, as NGINX's $proxy_add_x_forwarded_for does;
// proto, host, port and X-Real-IP describe this hop and are overwritten.
// Forwarded and X-Forwarded-Prefix are kept only from a trusted proxy (the
// edge sets X-Forwarded-Prefix itself when it strips a prefix); from anyone
// else they are removed, so that a client cannot claim them.
func setForwarded(h http.Header, r *http.Request, trusted bool, prefix string) {
	ip := clientIP(r.RemoteAddr)
	chain := ip
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		chain = strings.Join(prior, ", ") + ", " + ip
	}
	h["X-Forwarded-For"] = []string{chain}
	if r.TLS != nil {
		h["X-Forwarded-Proto"] = []string{"https"}
	} else {
		h["X-Forwarded-Proto"] = []string{"http"}
	}
	h["X-Forwarded-Host"] = []string{r.Host}
	if !trusted {
		delete(h, "Forwarded")
		delete(h, "X-Forwarded-Prefix")
		delete(h, "X-Real-Ip")
		delete(h, "X-Forwarded-Port")
	}
	if _, ok := h["X-Real-Ip"]; !ok {
		h["X-Real-Ip"] = []string{ip}
	}
	if _, ok := h["X-Forwarded-Port"]; !ok {
		if port := localPort(r); port != "" {
			h["X-Forwarded-Port"] = []string{port}
		}
	}
	if prefix != "" {
		h["X-Forwarded-Prefix"] = []string{prefix}
	}
	if _, ok := h["User-Agent"]; !ok {
		// An absent User-Agent must stay absent; Go's client would add its own.
		h["User-Agent"] = nil
	}
}

// setStickyCookie pins the client to the endpoint that served it.
func setStickyCookie(h http.Header, r *http.Request, name, value string) {
	if c, err := r.Cookie(name); err == nil && c.Value == value {
		return
	}
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil}
	h.Add("Set-Cookie", c.String())
}

// requestID returns the client's X-Request-Id if it is a sane token, else a
// new random one. It is forwarded upstream, returned to the client and logged.
func requestID(h http.Header) string {
	if v := h.Get("X-Request-Id"); v != "" && len(v) <= 128 && printable(v) {
		return v
	}
	var b [32]byte
	const hex = "0123456789abcdef"
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		b[i] = hex[a>>(4*i)&0xf]
		b[16+i] = hex[c>>(4*i)&0xf]
	}
	id := string(b[:])
	h.Set("X-Request-Id", id)
	return id
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// redirect applies the route's swarmgate.redirects rules: the first rule
// whose From prefixes the request ("scheme://host/path", or the path when From
// is a path) sends the client to To plus the rest of the path and the query.
func (tg *target) redirect(r *http.Request, reqPath string) (string, int) {
	for _, rd := range tg.route.Redirects {
		src := reqPath
		if !strings.HasPrefix(rd.From, "/") {
			scheme := "http://"
			if r.TLS != nil {
				scheme = "https://"
			}
			src = scheme + strings.ToLower(stripPort(r.Host)) + reqPath
		}
		if rest, ok := strings.CutPrefix(src, rd.From); ok && (rest == "" || rest[0] == '/' || strings.HasSuffix(rd.From, "/")) {
			to := strings.TrimSuffix(rd.To, "/") + rest
			if to == "" {
				to = "/"
			}
			if r.URL.RawQuery != "" {
				to += "?" + r.URL.RawQuery
			}
			code := rd.Code
			if code == 0 {
				code = http.StatusMovedPermanently
			}
			return to, code
		}
	}
	return "", 0
}

func stripPort(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// localPort is the port of the listener the request came in on, or "".
func localPort(r *http.Request) string {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return ""
	}
	return port
}
