package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
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
		h["Te"] = teTrailers()
	}
}

// outHeader is the header of the upstream request: h less the hop-by-hop
// fields and the fields Connection names but the forwarding ones (as
// removeHopByHop, in the same copy), the h2c upgrade's HTTP2-Settings, and
// the fields whose name has an underscore, as NGINX drops them by default
// (underscores_in_headers off): behind a backend that folds "_" to "-" (CGI,
// PHP, many frameworks), X_Forwarded_For would pose as X-Forwarded-For. The
// map is made with room for extra more fields (those setForwarded adds), so
// that adding them does not grow it; the values share one array, as
// Header.Clone's do, and nil values stay nil. extra should count only the
// fields that will be added.
func outHeader(h http.Header, extra int) http.Header {
	var named [8]string
	drop := named[:0]
	for _, f := range h["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				if k := textproto.CanonicalMIMEHeaderKey(name); !forwardingHeaders[k] {
					drop = append(drop, k)
				}
			}
		}
	}
	keep := func(k string) bool {
		return !hopHeader(k) && k != "Http2-Settings" && strings.IndexByte(k, '_') < 0 && !slices.Contains(drop, k)
	}
	n, kept := 0, 0
	for k, vv := range h {
		if keep(k) {
			n += len(vv)
			kept++
		}
	}
	vals := make([]string, n)
	// A map of up to 8 fields is one group; sized beyond what it will hold
	// it would be a table twice as large.
	out := make(http.Header, kept+extra)
	for k, vv := range h {
		if !keep(k) {
			continue
		}
		if vv == nil {
			out[k] = nil
			continue
		}
		n := copy(vals, vv)
		out[k] = vals[:n:n]
		vals = vals[n:]
	}
	if !slices.Contains(drop, "Te") && httpguts.HeaderValuesContainsToken(h["Te"], "trailers") {
		out["Te"] = teTrailers()
	}
	return out
}

// hopHeader reports the fields of hopHeaders.
func hopHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

func teTrailers() []string { return []string{"trailers"} }

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

// setForwarded sets the forwarding fields: the client address is appended
// to any chain the client sent, as NGINX's $proxy_add_x_forwarded_for does;
// proto, host, port and X-Real-IP describe this hop and are overwritten.
// Forwarded and X-Forwarded-Prefix are kept only from a trusted proxy (the
// edge sets X-Forwarded-Prefix itself when it strips a prefix); from anyone
// else they are removed, so that a client cannot claim them.
func setForwarded(h http.Header, r *http.Request, trusted bool, prefix string) {
	// The values share one array: one allocation instead of six.
	vals := make([]string, 6)
	set := func(k, v string) {
		vals[0] = v
		h[k] = vals[:1:1]
		vals = vals[1:]
	}
	ip := clientIP(r.RemoteAddr)
	chain := ip
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		chain = strings.Join(prior, ", ") + ", " + ip
	}
	set("X-Forwarded-For", chain)
	if r.TLS != nil {
		set("X-Forwarded-Proto", "https")
	} else {
		set("X-Forwarded-Proto", "http")
	}
	set("X-Forwarded-Host", r.Host)
	if !trusted {
		delete(h, "Forwarded")
		delete(h, "X-Forwarded-Prefix")
		delete(h, "X-Real-Ip")
		delete(h, "X-Forwarded-Port")
	}
	if _, ok := h["X-Real-Ip"]; !ok {
		set("X-Real-Ip", ip)
	}
	if _, ok := h["X-Forwarded-Port"]; !ok {
		if port := localPort(r); port != "" {
			set("X-Forwarded-Port", port)
		}
	}
	if prefix != "" {
		set("X-Forwarded-Prefix", prefix)
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
	if vv := h["X-Request-Id"]; len(vv) > 0 && vv[0] != "" && len(vv[0]) <= 128 && printable(vv[0]) {
		return vv[0]
	}
	var b [32]byte
	const hex = "0123456789abcdef"
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		b[i] = hex[a>>(4*i)&0xf]
		b[16+i] = hex[c>>(4*i)&0xf]
	}
	id := string(b[:])
	h["X-Request-Id"] = []string{id}
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
// The usual ports are constants: formatting them would allocate.
func localPort(r *http.Request) string {
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		return portString(a.Port)
	case net.Addr:
		_, port, err := net.SplitHostPort(a.String())
		if err != nil {
			return ""
		}
		return port
	}
	return ""
}

func portString(p int) string {
	switch p {
	case 80:
		return "80"
	case 443:
		return "443"
	case 8080:
		return "8080"
	case 8443:
		return "8443"
	}
	return strconv.Itoa(p)
}
