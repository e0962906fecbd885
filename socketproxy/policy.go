// Package socketproxy is a least-privilege proxy for the Docker Engine API:
// it exposes to edges only the read-only endpoints that discovery needs, and
// denies everything else before a byte reaches the Docker socket.
//
// The request target is normalised once (Normalize) and matched against an
// anchored allow-list (Match); the normalised path is exactly what is
// forwarded. Identical concurrent GETs share one upstream request, and every
// /events subscriber with the same query shares one upstream stream.
package socketproxy

import (
	"errors"
	"net/url"
	"strings"
)

// Endpoint names the allow-list entry a request matched. It is also the
// "endpoint" label of the metrics, so the set is small and fixed.
type Endpoint string

// The allow-list. Nothing that writes, nothing that reveals secrets, configs,
// join tokens (/swarm), containers, images or the daemon's details (/info).
const (
	EndpointPing     Endpoint = "_ping"
	EndpointVersion  Endpoint = "version"
	EndpointServices Endpoint = "services"
	EndpointService  Endpoint = "services/{id}"
	EndpointTasks    Endpoint = "tasks"
	EndpointNetworks Endpoint = "networks"
	EndpointNetwork  Endpoint = "networks/{id}"
	EndpointNodes    Endpoint = "nodes"
	EndpointEvents   Endpoint = "events"
	// EndpointOther labels denied requests whose path is not on the list.
	EndpointOther Endpoint = "other"
)

// Limits of what Normalize and CheckQuery accept.
const (
	maxPathBytes    = 1024
	maxIDBytes      = 256
	DefaultMaxQuery = 4096
)

// Errors of Normalize and CheckQuery. They are reasons, safe to log and to
// return to the client.
var (
	ErrNotOriginForm = errors.New("request target is not an absolute path (origin-form)")
	ErrPathTooLong   = errors.New("path too long")
	ErrPathByte      = errors.New("path contains a character outside [A-Za-z0-9-._~/%]")
	ErrEscape        = errors.New("path has a malformed or ambiguous percent-escape")
	ErrDotSegment    = errors.New("path has an encoded dot segment")
	ErrAboveRoot     = errors.New("path climbs above the root")
	ErrQueryTooLong  = errors.New("query too long")
	ErrQuery         = errors.New("query is malformed")
)

// Normalize turns the path of an origin-form request target (without its
// query) into the one canonical form that is matched and forwarded:
//
//   - only the bytes A-Z a-z 0-9 - . _ ~ / and percent-escapes are accepted;
//     backslash, NUL, controls, spaces, non-ASCII, ';', ':', '@' and the other
//     reserved characters are refused rather than interpreted;
//   - a percent-escape must decode to one of A-Z a-z 0-9 - . _ ~ (RFC 3986
//     section 6.2.2.2) and is decoded; an escape of anything else (%2F, %5C,
//     %25, %00, ...) is refused, because its meaning depends on who decodes it;
//   - a segment made only of dots that contains an escaped dot (%2e, .%2E) is
//     refused: it is a dot segment to some parsers and a name to others;
//   - empty segments (//) and "." are dropped, ".." removes the previous
//     segment (RFC 3986 section 5.2.4); climbing above the root is refused;
//   - a trailing slash is dropped.
//
// Normalize is idempotent: Normalize(Normalize(p)) == Normalize(p).
func Normalize(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", ErrNotOriginForm
	}
	if len(p) > maxPathBytes {
		return "", ErrPathTooLong
	}
	segs := make([]string, 0, 4)
	for _, raw := range strings.Split(p[1:], "/") {
		seg, escapedDot, err := decodeSegment(raw)
		if err != nil {
			return "", err
		}
		switch {
		case seg == "" || seg == ".":
			if escapedDot {
				return "", ErrDotSegment
			}
		case seg == "..":
			if escapedDot {
				return "", ErrDotSegment
			}
			if len(segs) == 0 {
				return "", ErrAboveRoot
			}
			segs = segs[:len(segs)-1]
		default:
			if escapedDot && strings.Trim(seg, ".") == "" {
				return "", ErrDotSegment
			}
			segs = append(segs, seg)
		}
	}
	return "/" + strings.Join(segs, "/"), nil
}

// decodeSegment percent-decodes one path segment. escapedDot reports whether
// a '.' came from an escape.
func decodeSegment(raw string) (seg string, escapedDot bool, err error) {
	if !strings.Contains(raw, "%") {
		for i := 0; i < len(raw); i++ {
			if !unreserved(raw[i]) {
				return "", false, ErrPathByte
			}
		}
		return raw, false, nil
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '%' {
			if !unreserved(c) {
				return "", false, ErrPathByte
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
			return "", false, ErrEscape
		}
		d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
		if !unreserved(d) {
			return "", false, ErrEscape
		}
		if d == '.' {
			escapedDot = true
		}
		b.WriteByte(d)
		i += 2
	}
	return b.String(), escapedDot, nil
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// Match reports which allow-list entry a method and a normalised path name.
// Paths may carry Docker's version prefix /vX.Y. GET is allowed on every
// entry; HEAD only on /_ping, the one path where the Engine implements it
// (everywhere else it answers 404, so allowing it would add surface and no
// function). Anything else returns ok == false.
func Match(method, path string) (e Endpoint, ok bool) {
	e = route(path)
	if e == EndpointOther {
		return e, false
	}
	switch method {
	case "GET":
		return e, true
	case "HEAD":
		return e, e == EndpointPing
	}
	return e, false
}

// route maps a normalised path to its allow-list entry, or EndpointOther.
func route(path string) Endpoint {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return EndpointOther
	}
	first, tail, _ := strings.Cut(rest, "/")
	if apiVersion(first) {
		rest = tail
	}
	head, id, hasID := strings.Cut(rest, "/")
	if hasID {
		if !validID(id) {
			return EndpointOther
		}
		switch head {
		case "services":
			return EndpointService
		case "networks":
			return EndpointNetwork
		}
		return EndpointOther
	}
	switch head {
	case "_ping":
		return EndpointPing
	case "version":
		return EndpointVersion
	case "services":
		return EndpointServices
	case "tasks":
		return EndpointTasks
	case "networks":
		return EndpointNetworks
	case "nodes":
		return EndpointNodes
	case "events":
		return EndpointEvents
	}
	return EndpointOther
}

// apiVersion reports whether s is Docker's "vMAJOR.MINOR" path prefix.
func apiVersion(s string) bool {
	major, minor, ok := strings.Cut(strings.TrimPrefix(s, "v"), ".")
	return ok && len(s) > 0 && s[0] == 'v' && digits(major) && digits(minor)
}

func digits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validID reports whether s can be a service or network ID or name: Docker
// names are [a-zA-Z0-9][a-zA-Z0-9_.-]*. The one-segment check also rules out
// a second slash.
func validID(s string) bool {
	if s == "" || len(s) > maxIDBytes {
		return false
	}
	c := s[0]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// CheckQuery validates a raw query (without the '?'), which is forwarded
// unchanged: it must be at most max bytes of printable ASCII without '#' and
// must parse as a form (url.ParseQuery, which refuses bad escapes and ';').
func CheckQuery(q string, max int) error {
	if len(q) > max {
		return ErrQueryTooLong
	}
	for i := 0; i < len(q); i++ {
		if q[i] <= ' ' || q[i] >= 0x7f || q[i] == '#' {
			return ErrQuery
		}
	}
	if _, err := url.ParseQuery(q); err != nil {
		return ErrQuery
	}
	return nil
}
