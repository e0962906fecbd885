package proxy

import (
	"bufio"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"unsafe"

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
	drop := connectionNamed(h, named[:0])
	keep := func(k string) bool { return keepOut(k, drop) }
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

// connectionNamed appends to drop the canonical names of the fields that
// h's Connection names, but the forwarding ones.
func connectionNamed(h http.Header, drop []string) []string {
	for _, f := range h["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				if k := textproto.CanonicalMIMEHeaderKey(name); !forwardingHeaders[k] {
					drop = append(drop, k)
				}
			}
		}
	}
	return drop
}

// keepOut reports the client fields outHeader copies: not hop-by-hop, not
// HTTP2-Settings, without an underscore and not named by Connection (drop).
func keepOut(k string, drop []string) bool {
	return !hopHeader(k) && k != "Http2-Settings" && strings.IndexByte(k, '_') < 0 && !slices.Contains(drop, k)
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
	var f forwarded
	f.set(h, r, trusted, prefix)
	f.apply(h)
}

// forwarded is what setForwarded sets, worked out once from the request
// and the fields that h (the client's, or the upstream header being built)
// has: apply sets them in a header, and upstreamFields writes them beside
// the client's fields without one.
type forwarded struct {
	xff, proto, host string
	realIP, port     string // "" when kept from a trusted client, or no port
	prefix           string
	trusted          bool
}

func (f *forwarded) set(h http.Header, r *http.Request, trusted bool, prefix string) {
	ip := clientIP(r.RemoteAddr)
	f.xff = ip
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		f.xff = strings.Join(prior, ", ") + ", " + ip
	}
	f.proto = "http"
	if r.TLS != nil {
		f.proto = "https"
	}
	f.host, f.prefix, f.trusted = r.Host, prefix, trusted
	f.realIP, f.port = "", ""
	if _, ok := h["X-Real-Ip"]; !ok || !trusted {
		f.realIP = ip
	}
	if _, ok := h["X-Forwarded-Port"]; !ok || !trusted {
		f.port = localPort(r)
	}
}

// replaces reports the client's fields that f replaces or removes.
func (f *forwarded) replaces(k string) bool {
	switch k {
	case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host":
		return true
	case "Forwarded", "X-Real-Ip", "X-Forwarded-Port":
		return !f.trusted
	case "X-Forwarded-Prefix":
		return !f.trusted || f.prefix != ""
	}
	return false
}

func (f *forwarded) apply(h http.Header) {
	// The values share one array: one allocation instead of six.
	vals := make([]string, 6)
	set := func(k, v string) {
		vals[0] = v
		h[k] = vals[:1:1]
		vals = vals[1:]
	}
	set("X-Forwarded-For", f.xff)
	set("X-Forwarded-Proto", f.proto)
	set("X-Forwarded-Host", f.host)
	if !f.trusted {
		delete(h, "Forwarded")
		delete(h, "X-Forwarded-Prefix")
		delete(h, "X-Real-Ip")
		delete(h, "X-Forwarded-Port")
	}
	if f.realIP != "" {
		set("X-Real-Ip", f.realIP)
	}
	if f.port != "" {
		set("X-Forwarded-Port", f.port)
	}
	if f.prefix != "" {
		set("X-Forwarded-Prefix", f.prefix)
	}
	if _, ok := h["User-Agent"]; !ok {
		// An absent User-Agent must stay absent; Go's client would add its own.
		h["User-Agent"] = nil
	}
}

// upstreamFields are the header fields of an upstream request on the own
// transport, written without the header map that outHeader and
// setForwarded would build: the client's fields that outHeader keeps and
// setForwarded leaves, "Te: trailers" as outHeader puts it back, and the
// forwarding fields, in the order and with the values that map would be
// written with (writeFields). FuzzUpstreamFields checks the bytes against
// the map's.
type upstreamFields struct {
	h       http.Header // the client's; not modified
	drop    []string    // the fields Connection names, but the forwarding ones
	dropBuf [8]string
	te      bool // "Te: trailers" is sent
	fwd     forwarded
}

// set prepares f for r, as outHeader(r.Header) then setForwarded would.
func (f *upstreamFields) set(r *http.Request, trusted bool, prefix string) {
	f.h = r.Header
	f.drop = connectionNamed(r.Header, f.dropBuf[:0])
	f.te = !slices.Contains(f.drop, "Te") && httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers")
	f.fwd.set(r.Header, r, trusted, prefix)
}

// keeps reports the client's fields written as they are.
func (f *upstreamFields) keeps(k string) bool {
	return keepOut(k, f.drop) && !f.fwd.replaces(k)
}

// userAgent is the User-Agent field to write: the client's first value, ""
// (none) when it sent none.
func (f *upstreamFields) userAgent() string {
	if vv := f.h["User-Agent"]; len(vv) > 0 {
		return vv[0]
	}
	return ""
}

// header is f as the header map outHeader and setForwarded build, for the
// requests writeRequest hands to net/http's Request.Write.
func (f *upstreamFields) header() http.Header {
	h := outHeader(f.h, forwardedFields+2)
	f.fwd.apply(h)
	return h
}

// write writes the fields in key order, as writeFields would write
// header(), less the fields writeRequest writes itself.
func (f *upstreamFields) write(bw *bufio.Writer) {
	var buf [48]string
	keys := buf[:0]
	for k := range f.h {
		if !reqExcluded(k) && f.keeps(k) {
			keys = append(keys, k)
		}
	}
	keys = append(keys, "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host")
	if f.fwd.realIP != "" {
		keys = append(keys, "X-Real-Ip")
	}
	if f.fwd.port != "" {
		keys = append(keys, "X-Forwarded-Port")
	}
	if f.fwd.prefix != "" {
		keys = append(keys, "X-Forwarded-Prefix")
	}
	if f.te {
		keys = append(keys, "Te")
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		if v, ok := f.own(k); ok {
			writeField(bw, k, cleanValue(v))
			continue
		}
		for _, v := range f.h[k] {
			writeField(bw, k, cleanValue(v))
		}
	}
}

// own is the value of a field f sets itself.
func (f *upstreamFields) own(k string) (string, bool) {
	switch k {
	case "X-Forwarded-For":
		return f.fwd.xff, true
	case "X-Forwarded-Proto":
		return f.fwd.proto, true
	case "X-Forwarded-Host":
		return f.fwd.host, true
	case "X-Real-Ip":
		return f.fwd.realIP, f.fwd.realIP != ""
	case "X-Forwarded-Port":
		return f.fwd.port, f.fwd.port != ""
	case "X-Forwarded-Prefix":
		return f.fwd.prefix, f.fwd.prefix != ""
	case "Te":
		return "trailers", f.te
	}
	return "", false
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
// new random one, set in h. It is forwarded upstream, returned to the
// client and logged.
func requestID(h http.Header) string {
	if id, ok := clientRequestID(h); ok {
		return id
	}
	return new(requestIDBuf).generate(h)
}

// clientRequestID returns the client's X-Request-Id if it is a sane token.
func clientRequestID(h http.Header) (string, bool) {
	if vv := h["X-Request-Id"]; len(vv) > 0 && vv[0] != "" && len(vv[0]) <= 128 && printable(vv[0]) {
		return vv[0], true
	}
	return "", false
}

// requestIDBuf is the memory of a request ID the proxy makes: its bytes,
// which the ID's string shares, and the field's value slice. It belongs to
// one request (an exchange holds one, and an exchange is never reused), and
// b is written only before the string is made: the string never changes.
type requestIDBuf struct {
	b [32]byte
	v [1]string
}

// requestID is requestID's, with a new ID made in buf: no allocation.
func (buf *requestIDBuf) requestID(h http.Header) string {
	if id, ok := clientRequestID(h); ok {
		return id
	}
	return buf.generate(h)
}

// generate makes a random ID in buf and sets it in h.
func (buf *requestIDBuf) generate(h http.Header) string {
	const hex = "0123456789abcdef"
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		buf.b[i] = hex[a>>(4*i)&0xf]
		buf.b[16+i] = hex[c>>(4*i)&0xf]
	}
	id := unsafe.String(&buf.b[0], len(buf.b)) // string(buf.b[:]) without the copy
	buf.v[0] = id
	h["X-Request-Id"] = buf.v[:1:1]
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

// localPort is the port of the listener the request came in on, or "":
// the one a Server's connection context holds (localPortKey), else that of
// the request's http.LocalAddrContextKey.
func localPort(r *http.Request) string {
	ctx := r.Context()
	if port, ok := ctx.Value(localPortKey{}).(string); ok {
		return port
	}
	a, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
	return addrPort(a)
}

// localPortKey is the context key of a connection's local port, as
// addrPort gives it: a Server works it out once per connection.
type localPortKey struct{}

// addrPort is the port of a (nil: ""). The usual ports are constants:
// formatting them would allocate.
func addrPort(a net.Addr) string {
	switch a := a.(type) {
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
