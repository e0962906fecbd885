package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/swarmgate/swarmgate/route"
)

// Value parsers: one label value in, one route.Policy field out, or an error
// that says what the value should look like (the caller names the label).
// They are pure: nothing here reads a file or the clock.

// Bounds on values. They exist so that a typo fails loudly.
const (
	maxRate    = 1_000_000
	maxBodyMax = 1 << 40 // 1 TiB
	maxMaxAge  = 24 * time.Hour
	maxNameLen = 128
	maxEntries = 64 // CIDRs, origins, methods or header names in one list
)

// ParsePrefixes parses a comma list of CIDRs or single addresses (IPv4 or
// IPv6, no zone) for swarmgate.allow and swarmgate.deny. Prefixes are
// stored masked (10.1.2.3/8 is 10.0.0.0/8), a single address as /32 or /128.
func ParsePrefixes(v string) ([]netip.Prefix, error) {
	items, err := list(v, "address")
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(items))
	for _, s := range items {
		var p netip.Prefix
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil && a.Zone() != "" {
				err = errors.New("zone")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("%q: want a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or an address", s)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("%q: write IPv4 addresses in IPv4 form", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// list splits a comma list of at most maxEntries non-empty items (what
// names them in errors), trimmed.
func list(v, what string) ([]string, error) {
	items := strings.Split(v, ",")
	if len(items) > maxEntries {
		return nil, fmt.Errorf("more than %d entries", maxEntries)
	}
	for i, s := range items {
		if items[i] = strings.TrimSpace(s); items[i] == "" {
			return nil, fmt.Errorf("empty %s in the list", what)
		}
	}
	return items, nil
}

// starOrList is list, except that "*" alone is the one item "*", and
// star is true.
func starOrList(v, what string) (items []string, star bool, err error) {
	if v == "*" {
		return []string{"*"}, true, nil
	}
	items, err = list(v, what)
	return items, false, err
}

// ParseSecretName parses the name of a file in the secrets directory
// (swarmgate.auth.basic): letters, digits, '.', '_' and '-', starting with a
// letter or digit, so that it can name no other directory.
func ParseSecretName(v string) (string, error) {
	ok := len(v) <= maxNameLen && isAlnum(v[0]) && !strings.Contains(v, "..")
	for i := 0; ok && i < len(v); i++ {
		ok = isAlnum(v[i]) || strings.IndexByte("._-", v[i]) >= 0
	}
	if !ok {
		return "", fmt.Errorf("want a file name in the secrets directory: letters, digits, '.', '_' and '-', starting with a letter or digit, at most %d", maxNameLen)
	}
	return v, nil
}

// ParseErrorPage parses swarmgate.errors.page: the name of an HTML file in
// the secrets or configs directory (ParseSecretName), ending in .html, so
// that no other secret (a key, a password file) can be served as a page.
func ParseErrorPage(v string) (string, error) {
	if _, err := ParseSecretName(v); err != nil {
		return "", err
	}
	if !strings.HasSuffix(strings.ToLower(v), ".html") || len(v) == len(".html") {
		return "", errors.New("want the name of an .html file, such as errors.html")
	}
	return v, nil
}

// ParseRealm parses a basic-auth realm: printable ASCII or UTF-8 without
// '"' and '\', which it would need quoting for.
func ParseRealm(v string) (string, error) {
	if len(v) > maxNameLen {
		return "", fmt.Errorf("longer than %d bytes", maxNameLen)
	}
	for _, c := range v {
		if c < ' ' || c == 0x7f || c == '"' || c == '\\' {
			return "", fmt.Errorf("%q is not allowed in a realm", c)
		}
	}
	return v, nil
}

// ParseRate parses N/s, N/m or N/h (swarmgate.ratelimit). The burst is N
// until swarmgate.ratelimit.burst says otherwise.
func ParseRate(v string) (route.Rate, error) {
	errRate := fmt.Errorf("want N/s, N/m or N/h with N from 1 to %d", maxRate)
	n, unit, ok := strings.Cut(v, "/")
	if !ok {
		return route.Rate{}, errRate
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count < 1 || count > maxRate {
		return route.Rate{}, errRate
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[strings.ToLower(strings.TrimSpace(unit))]
	if per == 0 {
		return route.Rate{}, errRate
	}
	return route.Rate{N: count, Per: per, Burst: count}, nil
}

// ParseBurst parses swarmgate.ratelimit.burst: the requests a client may
// send at once.
func ParseBurst(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxRate {
		return 0, fmt.Errorf("want an integer from 1 to %d", maxRate)
	}
	return n, nil
}

// ParseSize parses a body size: bytes, or a number with k, m or g (KiB,
// MiB, GiB), as NGINX's client_max_body_size: 10m, 1g, 512k.
func ParseSize(v string) (int64, error) {
	errSize := errors.New("want a size such as 512k, 10m or 1g (up to 1024g)")
	num, mult := strings.ToLower(v), int64(1)
	if i := len(num) - 1; i > 0 {
		switch num[i] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		}
		if mult > 1 {
			num = num[:i]
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > maxBodyMax/mult {
		return 0, errSize
	}
	return n * mult, nil
}

// Sides of a swarmgate.headers.<side>.<Name> label.
const (
	Request  = "request"
	Response = "response"
)

// refused are the fields a header label cannot set or remove: hop-by-hop
// fields (RFC 9110 section 7.6.1), which describe one connection, and
// framing fields, which the edge computes from the body it sends.
var refused = map[string]string{
	"Connection": "hop-by-hop", "Proxy-Connection": "hop-by-hop", "Keep-Alive": "hop-by-hop",
	"Te": "hop-by-hop", "Trailer": "hop-by-hop", "Transfer-Encoding": "framing", "Upgrade": "hop-by-hop",
	"Proxy-Authenticate": "hop-by-hop", "Proxy-Authorization": "hop-by-hop",
	"Content-Length": "framing", "Host": "routing",
}

// forwarding are the request fields the edge sets itself after the
// policies (X-Forwarded-*, X-Request-Id): a label would be overwritten.
var forwarding = map[string]bool{
	"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "X-Forwarded-Port": true,
	"X-Forwarded-Prefix": true, "X-Real-Ip": true, "Forwarded": true, "X-Request-Id": true,
}

// ParseHeader parses swarmgate.headers.<side>.<name>=<value>: a field name
// (an RFC 9110 token, stored canonical) and a value to set, or "" to remove
// the field.
func ParseHeader(side, name, value string) (route.Header, error) {
	if name == "" || len(name) > maxNameLen {
		return route.Header{}, fmt.Errorf("want swarmgate.headers.%s.<Name> with a field name of 1 to %d bytes", side, maxNameLen)
	}
	canon, err := settableField(side, name)
	if err != nil {
		return route.Header{}, err
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return route.Header{}, errors.New("the value has control characters")
	}
	return route.Header{Name: canon, Value: value}, nil
}

// settableField checks a field name the edge may set on one side of an
// exchange and returns it canonical.
func settableField(side, name string) (string, error) {
	if !httpguts.ValidHeaderFieldName(name) || strings.IndexByte(name, '_') >= 0 {
		return "", fmt.Errorf("field name %q: want letters, digits and '-' (an RFC 9110 token without '_')", name)
	}
	canon := textproto.CanonicalMIMEHeaderKey(name)
	if why, ok := refused[canon]; ok {
		return "", fmt.Errorf("%s is a %s field; the edge sets it", canon, why)
	}
	if side == Request && forwarding[canon] {
		return "", fmt.Errorf("%s is set by the edge on every forwarded request", canon)
	}
	return canon, nil
}

// ParseAuthURL parses swarmgate.auth.forward: an absolute http or https
// URL of an auth service, usually a service on the overlay by name
// (http://auth:9091/verify), without user info or fragment.
func ParseAuthURL(v string) (string, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", errors.New("want an http or https URL such as http://auth:9091/verify")
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(v, "#") {
		return "", errors.New("want a URL without user info or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("port %q: want 1 to 65535", p)
		}
	}
	if h := u.Hostname(); !validHost(strings.ToLower(h)) && !isIPv6(h) {
		return "", fmt.Errorf("host %q: want a service name, a DNS name or an address", h)
	}
	return u.String(), nil
}

func isIPv6(h string) bool {
	a, err := netip.ParseAddr(h)
	return err == nil && a.Is6() && a.Zone() == ""
}

// ParseAuthHeaders parses swarmgate.auth.forward.headers: a comma list of
// fields of the auth service's 2xx answer to set on the request (the
// user's name, groups), stored canonical.
func ParseAuthHeaders(v string) ([]string, error) {
	items, err := list(v, "field name")
	if err != nil {
		return nil, err
	}
	for i, name := range items {
		canon, err := settableField(Request, name)
		if err != nil {
			return nil, err
		}
		if slices.Contains(items[:i], canon) {
			return nil, fmt.Errorf("field %s listed twice", canon)
		}
		items[i] = canon
	}
	return items, nil
}

// ParseMatchHeader parses swarmgate.match.header: Name=value, a request
// field (stored canonical) and the value a request must carry in it.
func ParseMatchHeader(v string) (route.Match, error) {
	name, value, ok := strings.Cut(v, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || value == "" || len(name) > maxNameLen {
		return route.Match{}, errors.New("want Name=value, such as X-Canary=1")
	}
	canon, err := settableField(Response, name) // the fields a label may name
	if err != nil {
		return route.Match{}, err
	}
	if !httpguts.ValidHeaderFieldValue(value) {
		return route.Match{}, errors.New("the value has control characters")
	}
	return route.Match{Name: canon, Value: value}, nil
}

// ParseMatchCookie parses swarmgate.match.cookie: name=value, a cookie
// (RFC 6265 token) and the value a request must send for it.
func ParseMatchCookie(v string) (route.Match, error) {
	name, value, ok := strings.Cut(v, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || value == "" || len(name) > maxNameLen {
		return route.Match{}, errors.New("want name=value, such as canary=1")
	}
	if !isToken(name) {
		return route.Match{}, fmt.Errorf("cookie name %q: want an RFC 6265 token", name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' {
			return route.Match{}, fmt.Errorf("cookie value %q: want RFC 6265 cookie octets (no space, '\"', ',', ';' or '\\')", value)
		}
	}
	return route.Match{Name: name, Value: value}, nil
}

// ParseOrigins parses swarmgate.cors.origins: "*", or a comma list of
// origins "scheme://host[:port]" (http or https), stored lower-case.
func ParseOrigins(v string) ([]string, error) {
	items, star, err := starOrList(v, "origin")
	if star || err != nil {
		return items, err
	}
	for i, o := range items {
		o = strings.ToLower(o)
		rest, ok := strings.CutPrefix(o, "https://")
		if !ok {
			rest, ok = strings.CutPrefix(o, "http://")
		}
		host, port, hasPort := strings.Cut(rest, ":")
		if hasPort {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
				ok = false
			}
		}
		if !ok || !validHost(host) {
			return nil, fmt.Errorf("origin %q: want scheme://host[:port] with scheme http or https and no path, or *", items[i])
		}
		items[i] = o
	}
	return items, nil
}

// validHost admits DNS names and IPv4 addresses: what an Origin carries
// (no IPv6 literal: write those as "*" or not at all).
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

// ParseMethods parses swarmgate.cors.methods: a comma list of method tokens,
// stored upper-case.
func ParseMethods(v string) ([]string, error) {
	items, err := list(v, "method")
	if err != nil {
		return nil, err
	}
	for i, m := range items {
		if !isToken(m) {
			return nil, fmt.Errorf("method %q: want a token such as GET or PUT", m)
		}
		items[i] = strings.ToUpper(m)
	}
	return items, nil
}

// ParseHeaderNames parses swarmgate.cors.headers: "*" or a comma list of
// field names, stored canonical.
func ParseHeaderNames(v string) ([]string, error) {
	items, star, err := starOrList(v, "field name")
	if star || err != nil {
		return items, err
	}
	for i, h := range items {
		if !httpguts.ValidHeaderFieldName(h) {
			return nil, fmt.Errorf("field name %q: want an RFC 9110 token", h)
		}
		items[i] = textproto.CanonicalMIMEHeaderKey(h)
	}
	return items, nil
}

// ParseMaxAge parses swarmgate.cors.max-age: a Go duration or a number of
// seconds, from 0 to 24h, in whole seconds.
func ParseMaxAge(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		var n int
		if n, err = strconv.Atoi(v); err == nil {
			d = time.Duration(n) * time.Second
		}
	}
	if err != nil || d < 0 || d > maxMaxAge || d%time.Second != 0 {
		return 0, errors.New("want whole seconds from 0 to 24h, such as 600 or 10m")
	}
	return d, nil
}

// Encodings swarmgate.compress offers, the edge's preference first.
const (
	Zstd   = "zstd"
	Brotli = "br"
	Gzip   = "gzip"
)

// ParseCompress parses swarmgate.compress: true (every encoding, zstd then
// br then gzip), false, or a comma list of them in the order preferred.
func ParseCompress(v string) ([]string, error) {
	if b, err := strconv.ParseBool(v); err == nil {
		if b {
			return []string{Zstd, Brotli, Gzip}, nil
		}
		return nil, nil
	}
	items, err := list(v, "encoding")
	if err != nil {
		return nil, err
	}
	for i, e := range items {
		e = strings.ToLower(e)
		if e != Zstd && e != Brotli && e != Gzip {
			return nil, fmt.Errorf("encoding %q: want true, false or a list of zstd, br and gzip", items[i])
		}
		for _, prev := range items[:i] {
			if prev == e {
				return nil, fmt.Errorf("encoding %s listed twice", e)
			}
		}
		items[i] = e
	}
	return items, nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return s != ""
}
