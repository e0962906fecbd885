package router

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// This file is the one definition of route host and path syntax. The label
// parser validates labels with these functions, so that a route it accepts is
// a route Insert accepts, and its errors read as Insert's do.

// Limits on route hosts and paths. A DNS name is at most 253 bytes in text
// form and a label at most 63 (RFC 1035 section 2.3.4). The path limit only
// bounds memory for hostile labels; real context roots are far shorter.
const (
	maxHostLen  = 253
	maxLabelLen = 63
	maxPathLen  = 1024
)

// syntaxError is the error of ParseHost and CheckPath: its text is the
// reason alone, as the label parser shows it, and it matches ErrInvalidHost
// or ErrInvalidPath with errors.Is.
type syntaxError struct {
	kind error
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }
func (e *syntaxError) Unwrap() error { return e.kind }

func hostError(format string, args ...any) error {
	return &syntaxError{ErrInvalidHost, fmt.Sprintf(format, args...)}
}

func pathError(format string, args ...any) error {
	return &syntaxError{ErrInvalidPath, fmt.Sprintf(format, args...)}
}

// ParseHost validates a route's host pattern and returns its canonical form:
// lower case, without a trailing dot. A pattern is an exact host name
// ("app.example.org", also an IPv4 address) or a wildcard ("*.example.org",
// wildcard true), which matches subdomains of any depth but not the apex;
// the whole pattern, "*." included, is at most 253 bytes, since longer ones
// can never match a host name.
//
// Each dot-separated label has 1 to 63 letters, digits and '-', not at either
// end (RFC 1123 section 2.1). Underscores are refused: they are not valid in
// host names, and a Host header or SNI name carrying one is no route's to
// claim. Non-ASCII names are refused with a hint to write their xn-- form.
// There is no port, scheme or path: the error says which one was given.
//
// The empty pattern is an error here; Insert takes "" as the default backend
// before it calls ParseHost. An error wraps ErrInvalidHost and its text names
// the host and the reason.
func ParseHost(pattern string) (host string, wildcard bool, err error) {
	h := strings.ToLower(pattern)
	switch {
	case h == "":
		return "", false, hostError("empty host name")
	case strings.Contains(h, "://"):
		return "", false, hostError("host %q: a host name, not a URL (no scheme)", h)
	case strings.ContainsAny(h, "/?#"):
		return "", false, hostError("host %q: a host name, not a URL (no path)", h)
	case strings.Contains(h, ":"):
		return "", false, hostError("host %q: no port (the edge matches host names on every port)", h)
	}
	host = strings.TrimSuffix(h, ".")
	name, wildcard := strings.CutPrefix(host, "*.")
	if name == "" || len(host) > maxHostLen {
		return "", false, hostError("host %q: want 1 to %d characters", h, maxHostLen)
	}
	for l := range strings.SplitSeq(name, ".") {
		if err := checkDNSLabel(l); err != nil {
			return "", false, hostError("host %q: %s", h, err)
		}
	}
	return host, wildcard, nil
}

// checkDNSLabel validates one lower-case label of a host name.
func checkDNSLabel(l string) error {
	if l == "" || len(l) > maxLabelLen {
		return fmt.Errorf("each dot-separated label needs 1 to %d characters", maxLabelLen)
	}
	if l == "*" {
		return errors.New("a wildcard is only allowed as the whole first label (*.example.org)")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return errors.New("a label cannot start or end with '-'")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case c >= 0x80:
			return errors.New("not ASCII: write internationalized names in their xn-- (punycode) form")
		default:
			return fmt.Errorf("%q is not allowed in a host name", c)
		}
	}
	return nil
}

// ParsePath validates a route's path prefix and returns its canonical form:
// a trailing "/" other than the root's is dropped, since prefixes match on
// segment boundaries and "/api/" means "/api". The rules are CheckPath's,
// and a prefix has no query or fragment either.
func ParsePath(prefix string) (string, error) {
	if err := CheckPath(prefix); err != nil {
		return "", err
	}
	if len(prefix) > 1 {
		prefix = strings.TrimSuffix(prefix, "/")
	}
	return prefix, nil
}

// ParseExactPath validates the path of an exact route (one that matches a
// request path equal to it only) and returns it as it is: the rules are
// CheckPath's, and since the path is compared byte for byte a trailing "/"
// is kept: "/docs/" matches "/docs/", not "/docs".
func ParseExactPath(p string) (string, error) {
	if err := CheckPath(p); err != nil {
		return "", err
	}
	return p, nil
}

// CheckPath validates an absolute path without changing it, for paths that
// are sent as written (health checks): it starts with "/", is at most 1024
// bytes, holds only what a cleaned request path can (RFC 3986 section 3.3
// pchars and "/", valid %XX escapes), and has no empty, "." or ".." segment,
// percent-encoded ones included, since a cleaned request path never has one
// and a route on one could never match. A query or fragment is an error: the
// caller splits it off first where one is allowed. The error wraps
// ErrInvalidPath; its text is the reason, without the path.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return pathError("want a path starting with /")
	}
	if len(p) > maxPathLen {
		return pathError("longer than %d bytes", maxPathLen)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '?' || c == '#':
			return pathError("a path prefix has no query or fragment")
		case c != '%' && !isPathChar(c):
			return pathError("%q is not allowed in a path (percent-encode it)", c)
		}
	}
	if strings.Contains(p, "//") {
		return pathError(`empty segment ("//")`)
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return pathError("bad percent-encoding")
	}
	for seg := range strings.SplitSeq(dec, "/") {
		if seg == "." || seg == ".." {
			return pathError(`"." and ".." segments are not allowed`)
		}
	}
	return nil
}

// isPathChar reports whether c may appear unencoded in a path: "/" and the
// pchar set of RFC 3986 (unreserved, sub-delims, ':' and '@').
func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("/-._~!$&'()*+,;=:@", c) >= 0
}
