package discovery

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// Label prefixes. Labels outside them are none of our business.
const (
	labelPrefix     = "swarmgate."
	namedPrefix     = "swarmgate.routes."
	interlockPrefix = "com.docker.lb."
)

// Bounds on label values. They are generous; they exist so that a typo (an
// extra zero) fails loudly instead of producing a route nobody meant.
const (
	maxWeight         = 10000
	maxPriority       = 1_000_000
	maxTimeout        = time.Hour
	minHealthInterval = time.Second
	maxHealthInterval = time.Hour
	maxPathLen        = 1024
	maxNameLen        = 128 // route, network, cluster and certificate names
)

// Route keys: what follows "swarmgate." or "swarmgate.routes.<name>.".
const (
	keyHosts          = "hosts"
	keyPort           = "port"
	keyPath           = "path"
	keyStrip          = "path.strip"
	keyPriority       = "priority"
	keyWeight         = "weight"
	keyBackend        = "backend"
	keyNetwork        = "network"
	keyBalancer       = "balancer"
	keySticky         = "sticky"
	keyTLS            = "tls"
	keyTLSRedirect    = "tls.redirect"
	keyHSTS           = "tls.hsts"
	keyBackendTLS     = "backend.tls"
	keyH2C            = "backend.h2c"
	keyHealthPath     = "health.path"
	keyHealthInterval = "health.interval"
	keyTimeout        = "timeout"
	keyRedirects      = "redirects"
	keyCluster        = "cluster"
	keyTCPPort        = "tcp.port"
	keyTCPSNI         = "tcp.sni"
	keyProxyProtocol  = "tcp.proxy-protocol"
	keyDefault        = "default"
)

// routeKeys lists every key, sorted, for the "did you mean" suggestion.
func routeKeys() []string {
	return []string{
		keyBackend, keyH2C, keyBackendTLS, keyBalancer, keyCluster, keyDefault,
		keyHealthInterval, keyHealthPath, keyHosts, keyNetwork, keyPath, keyStrip,
		keyPort, keyPriority, keyProxyProtocol, keyRedirects, keySticky, keyTCPPort, keyTCPSNI,
		keyTimeout, keyTLS, keyHSTS, keyTLSRedirect, keyWeight,
	}
}

// inherited are the keys a named route takes from the service level when it
// does not set them: they describe the service (where its tasks listen and
// how to reach them), not one route. Everything else a named route states
// itself, so that reading one route's labels tells the whole story.
func inherited(key string) bool {
	return key == keyPort || key == keyNetwork || key == keyBackend || key == keyCluster
}

// publishing keys make a route exist.
func publishing(key string) bool {
	return key == keyHosts || key == keyTCPPort || key == keyTCPSNI || key == keyDefault
}

// origin is where one route key's value came from.
type origin struct {
	label string // full label name, for errors
	value string // value in swarmgate syntax, trimmed
	orig  string // value as written, for errors
}

// spec is one route's raw keys before validation.
type spec struct {
	name string
	keys map[string]origin
	// interlock is true when the keys came from com.docker.lb.* labels only,
	// so that errors about missing keys name the labels the operator uses.
	interlock bool
}

func newSpec(name string) *spec { return &spec{name: name, keys: map[string]origin{}} }

// label names key of this route, whether or not it is set.
func (s *spec) label(key string) string {
	if o, ok := s.keys[key]; ok {
		return o.label
	}
	if s.interlock {
		if l := interlockLabelFor(key); l != "" {
			return l
		}
	}
	if s.name == "" {
		return labelPrefix + key
	}
	return namedPrefix + s.name + "." + key
}

// parser collects the errors of one service.
type parser struct {
	service string
	errs    []*route.LabelError
	// basePort is set once the service-level port label has been seen (valid
	// or not), so that named routes do not report it missing again.
	basePort bool
}

func (p *parser) fail(label, value, format string, args ...any) {
	p.errs = append(p.errs, &route.LabelError{Service: p.service, Label: label, Value: value, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) failKey(s *spec, key, format string, args ...any) {
	p.fail(s.label(key), s.keys[key].orig, format, args...)
}

// ParseLabels turns one service's labels into its routes. Labels that are not
// swarmgate.* or com.docker.lb.* are ignored. It returns no routes for a
// service that publishes nothing (no relevant labels). Any error skips the
// whole service: routes is nil and errs lists every problem found (not only
// the first), each naming service, label, value and reason.
//
// The service-level keys (swarmgate.<key>, and the com.docker.lb.* labels
// where no swarmgate.<key> says otherwise) make the default route, which
// exists when it sets hosts, tcp.port, tcp.sni or default. A named route
// (swarmgate.routes.<name>.<key>) states its own keys; only port, network,
// backend and cluster default to the service-level values. Routes come back
// sorted by name, the default route ("") first.
func ParseLabels(service string, labels map[string]string) (routes []route.Route, errs []*route.LabelError) {
	p := &parser{service: service}
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)

	def := newSpec("")
	named := map[string]*spec{}
	for _, label := range names {
		if strings.HasPrefix(label, labelPrefix) {
			p.collect(label, labels[label], def, named)
		}
	}
	il := p.interlock(labels, names)
	if len(def.keys) == 0 && len(il) > 0 {
		def.interlock = true
	}
	for k, o := range il {
		if _, ok := def.keys[k]; !ok { // swarmgate.* wins where both are set
			def.keys[k] = o
		}
	}
	if len(def.keys) == 0 && len(named) == 0 {
		if len(p.errs) > 0 {
			return nil, p.errs
		}
		return nil, nil
	}

	publishes := hasPublishing(def)
	base := p.build(def, nil, publishes)
	_, p.basePort = def.keys[keyPort]
	switch {
	case publishes:
		routes = append(routes, base)
	case len(named) == 0:
		p.fail(def.label(keyHosts), "", "the service publishes nothing: set %s (HTTP), %s or %s",
			def.label(keyHosts), def.label(keyTCPPort), def.label(keyTCPSNI))
	default:
		// Without a default route, service-level keys only serve as what
		// named routes inherit; anything else would silently do nothing.
		for _, k := range sortedKeys(def.keys) {
			if !inherited(k) {
				p.failKey(def, k, "the default route publishes nothing (no hosts, tcp.port or tcp.sni), so this applies to no route; set it under swarmgate.routes.<name>. instead")
			}
		}
	}

	routeNames := make([]string, 0, len(named))
	for n := range named {
		routeNames = append(routeNames, n)
	}
	sort.Strings(routeNames)
	for _, n := range routeNames {
		s := named[n]
		publishes := hasPublishing(s)
		r := p.build(s, &base, publishes)
		if !publishes {
			p.fail(s.label(keyHosts), "", "route %q publishes nothing: set %s, %s or %s", n,
				s.label(keyHosts), s.label(keyTCPPort), s.label(keyTCPSNI))
			continue
		}
		routes = append(routes, r)
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return routes, nil
}

// hasPublishing reports whether a route exists: it names hosts, a TCP port
// or SNI names, or it is the default backend (swarmgate.default=false
// publishes nothing by itself).
func hasPublishing(s *spec) bool {
	for k, o := range s.keys {
		if k == keyDefault {
			if b, err := parseBool(o.value); err != nil || !b {
				continue
			}
		}
		if publishing(k) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]origin) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// collect files one swarmgate.* label under its route and key.
func (p *parser) collect(label, value string, def *spec, named map[string]*spec) {
	o := origin{label: label, value: strings.TrimSpace(value), orig: value}
	if rest, ok := strings.CutPrefix(label, namedPrefix); ok {
		name, key, ok := strings.Cut(rest, ".")
		if !ok || name == "" || key == "" {
			p.fail(label, value, "want swarmgate.routes.<name>.<key>")
			return
		}
		if !validRouteName(name) {
			p.fail(label, value, "route name %q: want letters, digits, '-' and '_' (at most %d)", name, maxNameLen)
			return
		}
		if !knownKey(key) {
			p.fail(label, value, "unknown key %q%s", key, suggest(key, routeKeys(), namedPrefix+name+"."))
			return
		}
		s := named[name]
		if s == nil {
			s = newSpec(name)
			named[name] = s
		}
		s.keys[key] = o
		return
	}
	key := strings.TrimPrefix(label, labelPrefix)
	if key == "routes" {
		p.fail(label, value, "want swarmgate.routes.<name>.<key>")
		return
	}
	if !knownKey(key) {
		p.fail(label, value, "unknown label%s", suggest(key, routeKeys(), labelPrefix))
		return
	}
	def.keys[key] = o
}

func knownKey(k string) bool {
	for _, x := range routeKeys() {
		if x == k {
			return true
		}
	}
	return false
}

// suggest returns ` (did you mean PREFIXkey?)` for the closest candidate
// within edit distance 2, or "".
func suggest(got string, candidates []string, prefix string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 { // labels this long are not typos of ours
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// build validates one route's keys. base carries the service-level values a
// named route inherits; it is nil for the default route. Without publish,
// only the values are checked: the route will not be served, so how its keys
// fit together does not matter.
func (p *parser) build(s *spec, base *route.Route, publish bool) route.Route {
	r := route.Route{
		Service:    p.service,
		Name:       s.name,
		Path:       "/",
		Weight:     route.DefaultWeight,
		Backend:    route.BackendTask,
		TLS:        route.TLSOff,
		Timeout:    route.DefaultTimeout,
		Cluster:    route.DefaultCluster,
		BackendTLS: route.BackendTLSOff,
	}
	if base != nil {
		r.Port, r.Network, r.Backend, r.Cluster = base.Port, base.Network, base.Backend, base.Cluster
	}
	has := func(k string) bool { _, ok := s.keys[k]; return ok }
	for _, k := range sortedKeys(s.keys) {
		if err := applyKey(&r, k, s.keys[k].value); err != nil {
			p.failKey(s, k, "%v", err)
		}
	}
	if !publish {
		return r
	}
	if r.Port == 0 && !has(keyPort) && !p.basePort {
		p.fail(s.label(keyPort), "", "required: the container port to send traffic to")
	}

	tcp, sni, passthrough := has(keyTCPPort), has(keyTCPSNI), r.TLS == route.TLSPassthrough
	http := has(keyHosts) && !passthrough || r.Default
	switch {
	case tcp && (has(keyHosts) || sni || r.Default):
		p.failKey(s, keyTCPPort, "a route is either TCP (tcp.port), TLS passthrough (tcp.sni) or HTTP (hosts, default); use a named route for each")
	case sni && http:
		p.failKey(s, keyTCPSNI, "a route is either TLS passthrough (tcp.sni) or HTTP (hosts, default); use a named route for each")
	case passthrough && r.Default:
		p.failKey(s, keyTLS, "passthrough routes by SNI; it cannot serve as the default backend")
	case passthrough && tcp:
		p.failKey(s, keyTLS, "passthrough is for TLS on :443; a tcp.port route forwards raw TCP already")
	}
	if sni && has(keyTLS) && r.TLS != route.TLSPassthrough {
		p.failKey(s, keyTLS, "tcp.sni routes are not terminated; leave tls unset or passthrough")
	}

	if passthrough || sni {
		// tls=passthrough with hosts means tcp.sni with those hosts: the
		// names go to SNI and Hosts stays empty, so the HTTP router never
		// sees the route and IsHTTP is false.
		r.SNI = mergeHosts(r.SNI, r.Hosts)
		r.Hosts = nil
		r.TLS = route.TLSPassthrough
	}
	if http && has(keyProxyProtocol) {
		p.failKey(s, keyProxyProtocol, "applies to L4 routes only (tcp.port or tcp.sni)")
	}
	if !http {
		p.httpOnly(s, &r)
		r.Path = ""
		r.TLSRedirect = false
		return r
	}

	switch {
	case has(keyHSTS) && r.TLS == route.TLSOff:
		p.failKey(s, keyHSTS, "HSTS needs %s (auto or a certificate name)", s.label(keyTLS))
	case has(keyTLSRedirect) && r.TLSRedirect && r.TLS == route.TLSOff:
		p.failKey(s, keyTLSRedirect, "redirecting to HTTPS needs %s (auto or a certificate name)", s.label(keyTLS))
	case !has(keyTLSRedirect):
		r.TLSRedirect = r.TLS != route.TLSOff
	}
	if r.H2C && r.BackendTLS != route.BackendTLSOff {
		p.failKey(s, keyH2C, "h2c is cleartext HTTP/2; it contradicts %s=%s", s.label(keyBackendTLS), r.BackendTLS)
	}
	if has(keyHealthInterval) && r.HealthPath == "" {
		p.failKey(s, keyHealthInterval, "needs %s", s.label(keyHealthPath))
	}
	if r.HealthPath != "" && r.HealthInterval == 0 {
		r.HealthInterval = route.DefaultHealthInterval
	}
	if has(keyStrip) && r.Strip && r.Path == "/" {
		p.failKey(s, keyStrip, "there is no prefix to strip: %s is /", s.label(keyPath))
	}
	p.balance(s, &r)
	return r
}

// balance settles the balancer: sticky implies cookie, cookie needs sticky,
// and the VIP is balanced by Swarm, not by the edge.
func (p *parser) balance(s *spec, r *route.Route) {
	_, setBalancer := s.keys[keyBalancer]
	if r.Backend == route.BackendVIP {
		if r.Sticky != "" {
			p.failKey(s, keySticky, "session affinity needs %s=task: behind the VIP Swarm picks the task", s.label(keyBackend))
		}
		if setBalancer {
			p.failKey(s, keyBalancer, "the VIP is balanced by Swarm; a balancer needs %s=task", s.label(keyBackend))
		}
	}
	switch {
	case r.Balancer == "" && r.Sticky != "":
		r.Balancer = route.BalancerCookie
	case r.Balancer == "":
		r.Balancer = route.BalancerP2C
	case r.Balancer == route.BalancerCookie && r.Sticky == "":
		p.failKey(s, keyBalancer, "cookie balancing needs %s (the cookie name)", s.label(keySticky))
	}
}

// httpOnly rejects the keys that mean nothing to an L4 route.
func (p *parser) httpOnly(s *spec, r *route.Route) {
	for _, k := range []string{keyPath, keyStrip, keySticky, keyTLSRedirect, keyHSTS, keyBackendTLS, keyH2C, keyRedirects, keyHealthPath, keyHealthInterval} {
		if _, ok := s.keys[k]; ok {
			p.failKey(s, k, "applies to HTTP routes only (this route has no hosts)")
		}
	}
	if _, ok := s.keys[keyTLS]; ok && r.TLS != route.TLSPassthrough {
		p.failKey(s, keyTLS, "applies to HTTP routes only (this route has no hosts)")
	}
	if r.Balancer == route.BalancerCookie {
		p.failKey(s, keyBalancer, "cookie balancing applies to HTTP routes only")
	}
	if r.Balancer == "" {
		r.Balancer = route.BalancerP2C
	}
}

// applyKey parses one value into r.
func applyKey(r *route.Route, key, v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	var err error
	switch key {
	case keyHosts:
		r.Hosts, err = parseHosts(v)
	case keyPort:
		r.Port, err = parsePort(v)
	case keyPath:
		r.Path, err = parsePath(v)
	case keyStrip:
		r.Strip, err = parseBool(v)
	case keyPriority:
		r.Priority, err = parseInt(v, -maxPriority, maxPriority)
	case keyWeight:
		r.Weight, err = parseInt(v, 0, maxWeight)
	case keyBackend:
		r.Backend, err = keyword(v, route.BackendTask, route.BackendVIP)
	case keyNetwork:
		r.Network, err = parseName(v, "network")
	case keyBalancer:
		r.Balancer, err = keyword(v, route.Balancers()...)
	case keySticky:
		r.Sticky, err = parseCookieName(v)
	case keyTLS:
		r.TLS, err = parseTLS(v)
	case keyTLSRedirect:
		r.TLSRedirect, err = parseBool(v)
	case keyHSTS:
		r.HSTS, err = parseHSTS(v)
	case keyBackendTLS:
		r.BackendTLS, err = parseBackendTLS(v)
	case keyH2C:
		r.H2C, err = parseBool(v)
	case keyHealthPath:
		r.HealthPath, err = parseHealthPath(v)
	case keyHealthInterval:
		r.HealthInterval, err = parseDuration(v, minHealthInterval, maxHealthInterval)
	case keyTimeout:
		r.Timeout, err = parseDuration(v, time.Millisecond, maxTimeout)
	case keyRedirects:
		r.Redirects, err = parseRedirects(v)
	case keyCluster:
		r.Cluster, err = parseName(v, "cluster")
	case keyTCPPort:
		r.TCPPort, err = parsePort(v)
		if err == nil && (r.TCPPort == 80 || r.TCPPort == 443) {
			err = fmt.Errorf("port %d belongs to the edge's HTTP/HTTPS listeners; use hosts for HTTP or tcp.sni for TLS on 443", r.TCPPort)
		}
	case keyTCPSNI:
		r.SNI, err = parseHosts(v)
	case keyProxyProtocol:
		r.ProxyProtocol, err = parseProxyProtocol(v)
	case keyDefault:
		r.Default, err = parseBool(v)
	}
	return err
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

func parseInt(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("want an integer from %d to %d", lo, hi)
	}
	return n, nil
}

func parsePort(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("want a port from 1 to 65535")
	}
	return n, nil
}

func parseDuration(v string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want a duration such as 30s, 1m30s or 500ms")
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("want a duration from %v to %v", lo, hi)
	}
	return d, nil
}

// keyword matches v case-insensitively against a closed set.
func keyword(v string, set ...string) (string, error) {
	lv := strings.ToLower(v)
	for _, s := range set {
		if lv == s {
			return s, nil
		}
	}
	return "", fmt.Errorf("want one of %s%s", strings.Join(set, ", "), suggest(lv, set, ""))
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

// validCertName admits names that are safe as file names in the certificate
// directory: no separators, no leading dot, no "..".
func validCertName(v string) bool {
	if v == "" || len(v) > maxNameLen || !isAlnum(v[0]) || strings.Contains(v, "..") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func validRouteName(v string) bool {
	if v == "" || len(v) > maxNameLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// parseName validates a Docker network or a cluster name.
func parseName(v, what string) (string, error) {
	if !validCertName(v) {
		return "", fmt.Errorf("want a %s name: letters, digits, '.', '_' and '-', starting with a letter or digit, at most %d", what, maxNameLen)
	}
	return v, nil
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

// parseHosts parses a comma list of host names: lower-cased, deduplicated,
// in the order written.
func parseHosts(v string) ([]string, error) {
	var hosts []string
	seen := map[string]bool{}
	for _, h := range strings.Split(v, ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if err := checkHost(h, true); err != nil {
			return nil, err
		}
		h = strings.TrimSuffix(h, ".")
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	return hosts, nil
}

// checkHost validates one lower-case host name; wildcard allows a leading
// "*." label.
func checkHost(h string, wildcard bool) error {
	switch {
	case h == "":
		return errors.New("empty host name in the list")
	case strings.Contains(h, "://"):
		return fmt.Errorf("host %q: a host name, not a URL (no scheme)", h)
	case strings.ContainsAny(h, "/?#"):
		return fmt.Errorf("host %q: a host name, not a URL (no path)", h)
	case strings.Contains(h, ":"):
		return fmt.Errorf("host %q: no port (the edge matches host names on every port)", h)
	}
	name := strings.TrimSuffix(h, ".")
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		if !wildcard {
			return fmt.Errorf("host %q: no wildcard here", h)
		}
		name = rest
	}
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("host %q: want 1 to 253 characters", h)
	}
	for _, l := range strings.Split(name, ".") {
		if err := checkDNSLabel(l); err != nil {
			return fmt.Errorf("host %q: %w", h, err)
		}
	}
	return nil
}

func checkDNSLabel(l string) error {
	if l == "" || len(l) > 63 {
		return errors.New("each dot-separated label needs 1 to 63 characters")
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
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c >= 0x80:
			return errors.New("not ASCII: write internationalized names in their xn-- (punycode) form")
		default:
			return fmt.Errorf("%q is not allowed in a host name", c)
		}
	}
	return nil
}

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

// parsePath validates a path prefix and drops its trailing slash (except the
// root's): the router matches prefixes on segment boundaries, so "/api" and
// "/api/" mean the same.
func parsePath(v string) (string, error) {
	if err := checkPath(v); err != nil {
		return "", err
	}
	if strings.ContainsAny(v, "?#") {
		return "", errors.New("a path prefix has no query or fragment")
	}
	if len(v) > 1 {
		v = strings.TrimSuffix(v, "/")
	}
	return v, nil
}

// checkPath holds the rules every path shares: absolute, printable, no empty,
// "." or ".." segment (also percent-encoded), bounded.
func checkPath(v string) error {
	if !strings.HasPrefix(v, "/") {
		return errors.New("want a path starting with /")
	}
	if len(v) > maxPathLen {
		return fmt.Errorf("longer than %d bytes", maxPathLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return fmt.Errorf("%q is not allowed in a path (percent-encode it)", v[i])
		}
	}
	p, _, _ := strings.Cut(v, "?")
	p, _, _ = strings.Cut(p, "#")
	if strings.Contains(p, "//") {
		return errors.New(`empty segment ("//")`)
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return errors.New("bad percent-encoding")
	}
	for _, seg := range strings.Split(dec, "/") {
		if seg == "." || seg == ".." {
			return errors.New(`"." and ".." segments are not allowed`)
		}
	}
	return nil
}

func parseHealthPath(v string) (string, error) {
	if err := checkPath(v); err != nil {
		return "", err
	}
	if strings.Contains(v, "#") {
		return "", errors.New("a health check path has no fragment")
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
		p, err := parsePath(s)
		if err != nil {
			return "", err
		}
		return p, nil
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
	host := strings.ToLower(u.Hostname())
	if err := checkHost(host, false); err != nil {
		return "", err
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
		if p, err = parsePath(p); err != nil {
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
	parts := strings.Split(v, ";")
	age := strings.TrimSpace(parts[0])
	var d time.Duration
	switch {
	case strings.HasSuffix(age, "y"):
		n, err := strconv.Atoi(strings.TrimSuffix(age, "y"))
		if err != nil || n < 0 || n > 10 {
			return "", fmt.Errorf("want a max-age such as 1y, 180d or 720h, optionally ;includeSubDomains;preload")
		}
		d = time.Duration(n) * 365 * 24 * time.Hour
	case strings.HasSuffix(age, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(age, "d"))
		if err != nil || n < 0 || n > 3650 {
			return "", fmt.Errorf("want a max-age such as 1y, 180d or 720h, optionally ;includeSubDomains;preload")
		}
		d = time.Duration(n) * 24 * time.Hour
	default:
		var err error
		if d, err = time.ParseDuration(age); err != nil || d < 0 {
			return "", fmt.Errorf("want a max-age such as 1y, 180d or 720h, optionally ;includeSubDomains;preload")
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
