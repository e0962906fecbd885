package discovery

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/route"
	"github.com/swarmgate/swarmgate/router"
)

// Value parsers: one label value in, one Route field out, or an error that
// says what the value should look like (the caller names the label). Host
// and path syntax is the router's (router.ParseHost, router.ParsePath), so
// that every route the parser accepts is one the router accepts.

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

// intIn parses integers from lo to hi.
func intIn(lo, hi int) func(string) (int, error) {
	return func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("want an integer from %d to %d", lo, hi)
		}
		return n, nil
	}
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("want a port from 1 to 65535")
	}
	return n, nil
}

// parseTCPPort parses the edge port of an L4 route: any but the HTTP and
// HTTPS listeners' (the port is returned with that error too).
func parseTCPPort(v string) (int, error) {
	n, err := parsePort(v)
	if err == nil && (n == 80 || n == 443) {
		err = fmt.Errorf("port %d belongs to the edge's HTTP/HTTPS listeners; use hosts for HTTP or tcp.sni for TLS on 443", n)
	}
	return n, err
}

// durationIn parses Go durations from lo to hi.
func durationIn(lo, hi time.Duration) func(string) (time.Duration, error) {
	return func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, errors.New("want a duration such as 30s, 1m30s or 500ms")
		}
		if d < lo || d > hi {
			return 0, fmt.Errorf("want a duration from %v to %v", lo, hi)
		}
		return d, nil
	}
}

// oneOf parses a keyword of a closed set, case-insensitively.
func oneOf(set ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		lv := strings.ToLower(v)
		for _, s := range set {
			if lv == s {
				return s, nil
			}
		}
		return "", fmt.Errorf("want one of %s%s", strings.Join(set, ", "), suggest(lv, set, ""))
	}
}

func parseTLS(v string) (string, error) {
	switch lv := strings.ToLower(v); lv {
	case route.TLSOff, route.TLSAuto, route.TLSPassthrough:
		return lv, nil
	}
	if !validCertName(v) {
		return "", errors.New("want off, auto, passthrough or a certificate name ([A-Za-z0-9._-], starting with a letter or digit)")
	}
	return v, nil
}

func parseBackendTLS(v string) (string, error) {
	switch strings.ToLower(v) {
	case route.BackendTLSOff, "false":
		return route.BackendTLSOff, nil
	case route.BackendTLSOn, "true":
		return route.BackendTLSOn, nil
	case route.BackendTLSInsecure:
		return route.BackendTLSInsecure, nil
	}
	return "", errors.New("want off, on or insecure")
}

// parseProxyProtocol reads the PROXY protocol version sent to the tasks of
// an L4 route: off, v1 (text) or v2 (binary).
func parseProxyProtocol(v string) (int, error) {
	switch strings.ToLower(v) {
	case "off", "false", "0":
		return 0, nil
	case "v1", "1":
		return 1, nil
	case "v2", "2":
		return 2, nil
	}
	return 0, fmt.Errorf("want off, v1 or v2")
}

// validCertName admits names that are safe as file names in the certificate
// directory: no separators, no leading dot, no "..".
func validCertName(v string) bool {
	return validName(v, "._-") && isAlnum(v[0]) && !strings.Contains(v, "..")
}

// validRouteName admits the <name> of swarmgate.routes.<name>.<key>.
func validRouteName(v string) bool { return validName(v, "_-") }

// validName reports whether v is 1 to maxNameLen letters, digits and bytes
// of extra.
func validName(v, extra string) bool {
	if v == "" || len(v) > maxNameLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && strings.IndexByte(extra, c) < 0 {
			return false
		}
	}
	return true
}

// nameOf parses a Docker network or a cluster name (what says which).
func nameOf(what string) func(string) (string, error) {
	return func(v string) (string, error) {
		if !validCertName(v) {
			return "", fmt.Errorf("want a %s name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most %d", what, maxNameLen)
		}
		return v, nil
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// parseCookieName accepts an RFC 6265 cookie-name: an RFC 7230 token.
func parseCookieName(v string) (string, error) {
	if len(v) > 64 {
		return "", errors.New("cookie name longer than 64 bytes")
	}
	for i := 0; i < len(v); i++ {
		if !isTokenChar(v[i]) {
			return "", fmt.Errorf("cookie name: %q is not allowed (RFC 6265 token)", v[i])
		}
	}
	return v, nil
}

func isTokenChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseHosts parses a comma list of host patterns (router.ParseHost):
// trimmed, lower-cased, without a trailing dot, deduplicated, in the order
// written.
func parseHosts(v string) ([]string, error) {
	list := strings.Split(v, ",")
	for i, h := range list {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, errors.New("empty host name in the list")
		}
		var err error
		if list[i], _, err = router.ParseHost(h); err != nil {
			return nil, err
		}
	}
	return mergeHosts(nil, list), nil
}

// mergeHosts returns the hosts of a, then those of b, each once, in order.
func mergeHosts(a, b []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, h := range append(append([]string(nil), a...), b...) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out
}

// parseHealthPath validates the path and query of a health check request.
// It is sent as written, so nothing is normalised: the path part follows
// the router's rules (router.CheckPath), the query is printable ASCII.
func parseHealthPath(v string) (string, error) {
	if strings.Contains(v, "#") {
		return "", errors.New("a health check path has no fragment")
	}
	p, query, _ := strings.Cut(v, "?")
	if err := router.CheckPath(p); err != nil {
		return "", err
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("%q is not allowed in a query (percent-encode it)", c)
		}
	}
	return v, nil
}

// parseRedirects parses `FROM=>TO[ 301|302]` rules separated by ";". A
// trailing ";" is allowed. FROM and TO are each an absolute http(s) URL or
// a path; they are stored normalized (lower-case scheme and host, no
// trailing slash except a root path) because the proxy matches FROM as a
// prefix of "scheme://host/path" or of the path.
func parseRedirects(v string) ([]route.Redirect, error) {
	var out []route.Redirect
	rules := strings.Split(v, ";")
	for i, rule := range rules {
		rule = strings.TrimSpace(rule)
		if rule == "" {
			if i == len(rules)-1 && i > 0 {
				continue
			}
			return nil, fmt.Errorf("rule %d: empty rule", i+1)
		}
		rd, err := parseRedirect(rule)
		if err != nil {
			return nil, fmt.Errorf("rule %d %q: %w", i+1, rule, err)
		}
		out = append(out, rd)
	}
	return out, nil
}

func parseRedirect(rule string) (route.Redirect, error) {
	rd := route.Redirect{Code: 301}
	if i := strings.LastIndexAny(rule, " \t"); i >= 0 {
		code := rule[i+1:]
		if n, err := strconv.Atoi(code); err == nil {
			if n != 301 && n != 302 {
				return rd, fmt.Errorf("status %d: want 301 or 302", n)
			}
			rd.Code = n
			rule = strings.TrimSpace(rule[:i])
		}
	}
	from, to, ok := strings.Cut(rule, "=>")
	if !ok {
		return rd, errors.New("want FROM=>TO")
	}
	var err error
	if rd.From, err = redirectEnd(strings.TrimSpace(from), false); err != nil {
		return rd, fmt.Errorf("from: %w", err)
	}
	if rd.To, err = redirectEnd(strings.TrimSpace(to), true); err != nil {
		return rd, fmt.Errorf("to: %w", err)
	}
	if rd.From == rd.To {
		return rd, errors.New("redirects to itself")
	}
	return rd, nil
}

// redirectEnd normalizes one side of a redirect. Only the target may name a
// port: the source is matched against the Host header without its port.
func redirectEnd(s string, target bool) (string, error) {
	if s == "" {
		return "", errors.New("empty")
	}
	if strings.HasPrefix(s, "/") {
		return router.ParsePath(s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" { // url.Parse lower-cases the scheme
		return "", errors.New("want an absolute http(s) URL or a path starting with /")
	}
	if u.User != nil || u.Opaque != "" {
		return "", errors.New("want an absolute http(s) URL without user info")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", errors.New("no query or fragment")
	}
	host, wildcard, err := router.ParseHost(u.Hostname())
	if err != nil {
		return "", err
	}
	if wildcard {
		return "", fmt.Errorf("host %q: no wildcard here", host)
	}
	if u.Port() != "" {
		if !target {
			return "", errors.New("no port in the source (it matches the host name on every port)")
		}
		if _, err := parsePort(u.Port()); err != nil {
			return "", err
		}
		host += ":" + u.Port()
	}
	p := u.EscapedPath()
	if p != "" {
		if p, err = router.ParsePath(p); err != nil {
			return "", err
		}
	}
	if p == "/" {
		p = ""
	}
	return u.Scheme + "://" + host + p, nil
}

// parseHSTS turns a max-age into a Strict-Transport-Security value:
// "1y", "180d" or a Go duration, optionally followed by ";includeSubDomains"
// and ";preload" (RFC 6797).
func parseHSTS(v string) (string, error) {
	errAge := errors.New("want a max-age such as 1y, 180d or 720h, optionally ;includeSubDomains;preload")
	parts := strings.Split(v, ";")
	age := strings.TrimSpace(parts[0])
	var d time.Duration
	if n, unitDays, ok := hstsUnit(age); ok {
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 || count > 3650/unitDays { // at most 10 years
			return "", errAge
		}
		d = time.Duration(count*unitDays) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(age); err != nil || d < 0 {
			return "", errAge
		}
	}
	out := "max-age=" + strconv.FormatInt(int64(d/time.Second), 10)
	for _, f := range parts[1:] {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "includesubdomains":
			out += "; includeSubDomains"
		case "preload":
			out += "; preload"
		default:
			return "", fmt.Errorf("unknown directive %q: want includeSubDomains or preload", strings.TrimSpace(f))
		}
	}
	return out, nil
}

// hstsUnit splits an age in years ("1y") or days ("180d") into its number
// and the days of its unit; ok is false for a Go duration ("720h").
func hstsUnit(age string) (n string, unitDays int, ok bool) {
	if n, ok := strings.CutSuffix(age, "y"); ok {
		return n, 365, true
	}
	if n, ok := strings.CutSuffix(age, "d"); ok {
		return n, 1, true
	}
	return "", 0, false
}
