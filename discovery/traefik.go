package discovery

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/swarmgate/swarmgate/route"
)

// Traefik's Swarm labels (traefik.*), read with Traefik v2 and v3 semantics
// on the services labelled traefik.enable=true, when --labels names the
// traefik dialect. Each HTTP router becomes one named route per (hosts,
// path) of its rule, its service gives the port, sticky cookie and health
// check, and its middlewares the policies; a TCP router becomes an SNI
// passthrough route. The translation is to route keys in swarmgate syntax,
// each keeping the Traefik label it came from, so that one validator (build)
// checks both dialects and every error names what the operator wrote.
// Anything swarmgate cannot do as Traefik would is an error that says why:
// the service is skipped, never half-routed. Reference:
// docs/traefik-labels.md.

// Traefik's entrypoint names for the edge's two HTTP listeners: Traefik's
// docs call them web and websecure; http and https are the other usual pair.
var (
	traefikHTTPEntrypoints  = []string{"web", "http"}
	traefikHTTPSEntrypoints = []string{"websecure", "https"}
)

// traefikSecrets is where Docker secrets appear in Traefik's container, as
// in the edge's: a basicauth.usersfile there is a secret the edge can read.
const traefikSecrets = "/run/secrets/"

// tfKey is a route key translated from a Traefik label. A key with err is
// one swarmgate cannot take as written; it is reported unless a swarmgate
// label sets the key (swarmgate wins), which is how an operator fills in
// what lives in Traefik's static configuration (a certificate, a port).
type tfKey struct {
	origin
	err string
}

// tfObject is one router, service or middleware: its keys (lower case,
// after "traefik.<proto>.<section>.<name>.") and their labels.
type tfObject struct {
	name string
	keys map[string]origin
}

// tfSpec is one route translated from a Traefik router.
type tfSpec struct {
	name   string // the route name
	router string // the router it came from: swarmgate.routes.<router>.* apply
	keys   map[string]tfKey
	alias  map[string]string // see spec.alias
	rule   origin            // the router's rule, for errors about the route as a whole
}

// tfLabels is a service's traefik.* labels, sorted by kind.
type tfLabels struct {
	service     string // the Swarm service, which names an implicit Traefik service
	network     *origin
	lbswarm     *origin
	routers     map[string]*tfObject // http
	services    map[string]*tfObject
	middlewares map[string]*tfObject
	tcpRouters  map[string]*tfObject
	tcpServices map[string]*tfObject
	// overridden reports whether a swarmgate label sets key in the routes
	// of router (see mergeTraefik).
	overridden func(router, key string) bool
}

// tfRouter is an HTTP router after translation, before routers that match
// the same requests are joined.
type tfRouter struct {
	name     string
	https    bool // served on the HTTPS listener
	alts     []ruleAlt
	rule     origin
	keys     map[string]tfKey // everything but hosts, path and default
	alias    map[string]string
	redirect *origin  // a redirectscheme to https among its middlewares
	strip    []string // stripprefix prefixes
	stripAt  origin
}

// traefik reads the traefik.* labels of a traefik.enable=true service into
// route specs, reporting what cannot be translated. names is the sorted
// label list; def and named are the swarmgate specs, which win.
func (p *parser) traefik(labels map[string]string, names []string, def *spec, named map[string]*spec) []*tfSpec {
	enable, ok := labels[traefikPrefix+"enable"]
	if !ok {
		return nil
	}
	if on, err := parseBool(strings.TrimSpace(enable)); err != nil {
		p.fail(traefikPrefix+"enable", enable, "%v", err)
		return nil
	} else if !on {
		return nil
	}
	t := &tfLabels{service: p.service, routers: map[string]*tfObject{}, services: map[string]*tfObject{},
		middlewares: map[string]*tfObject{}, tcpRouters: map[string]*tfObject{}, tcpServices: map[string]*tfObject{},
		overridden: func(router, key string) bool { return p.overridden(def, named[router], key) }}
	for _, label := range names {
		if strings.HasPrefix(label, traefikPrefix) && label != traefikPrefix+"enable" {
			p.collectTraefik(t, label, labels[label])
		}
	}
	if len(t.routers) == 0 && len(t.tcpRouters) == 0 {
		p.fail(traefikPrefix+"enable", enable, "the service defines no router: Traefik would make one from its defaultRule, which is in its static configuration; add traefik.http.routers.<name>.rule")
		return nil
	}
	var specs []*tfSpec
	specs = append(specs, p.traefikHTTP(t)...)
	specs = append(specs, p.traefikTCP(t)...)
	for _, s := range specs {
		if t.network != nil {
			s.keys[keyNetwork] = tfKey{origin: *t.network}
		}
		if t.lbswarm != nil {
			if on, err := parseBool(t.lbswarm.value); err != nil {
				p.fail(t.lbswarm.label, t.lbswarm.orig, "%v", err)
			} else if on {
				s.keys[keyBackend] = tfKey{origin: origin{t.lbswarm.label, route.BackendVIP, t.lbswarm.orig}}
			}
		}
	}
	return specs
}

// collectTraefik files one traefik.* label.
func (p *parser) collectTraefik(t *tfLabels, label, value string) {
	o := origin{label: label, value: strings.TrimSpace(value), orig: value}
	if secretLabel(label) {
		o = withheld(o)
		value = o.orig
	}
	rest := strings.TrimPrefix(label, traefikPrefix)
	parts := strings.SplitN(rest, ".", 4)
	section := strings.ToLower(strings.Join(parts[:min(2, len(parts))], "."))
	switch section {
	case "docker.network", "swarm.network":
		if len(parts) == 2 {
			t.network = &o
			return
		}
	case "docker.lbswarm", "swarm.lbswarm":
		if len(parts) == 2 {
			t.lbswarm = &o
			return
		}
	}
	var into map[string]*tfObject
	switch section {
	case "http.routers":
		into = t.routers
	case "http.services":
		into = t.services
	case "http.middlewares":
		into = t.middlewares
	case "tcp.routers":
		into = t.tcpRouters
	case "tcp.services":
		into = t.tcpServices
	case "tcp.middlewares":
		p.fail(label, value, "TCP middlewares are not supported by swarmgate")
		return
	case "udp.routers", "udp.services":
		p.fail(label, value, "UDP routing is not supported by swarmgate")
		return
	default:
		p.fail(label, value, "not supported by swarmgate: it reads traefik.enable, traefik.swarm.network (or traefik.docker.network), traefik.swarm.lbswarm and traefik.http.routers, services and middlewares, traefik.tcp.routers and services")
		return
	}
	if len(parts) < 4 || parts[2] == "" || parts[3] == "" {
		p.fail(label, value, "want traefik.%s.<name>.<option>", section)
		return
	}
	obj := into[parts[2]]
	if obj == nil {
		obj = &tfObject{name: parts[2], keys: map[string]origin{}}
		into[parts[2]] = obj
	}
	key := strings.ToLower(parts[3])
	if prev, dup := obj.keys[key]; dup {
		// Traefik reads option names in any case: these are one option.
		p.fail(label, value, "sets the option of %s again, in other case", prev.label)
		return
	}
	obj.keys[key] = o
}

// traefikHTTP translates the HTTP routers, joining the routers that serve
// the same hosts and path over HTTP and over HTTPS into one route.
func (p *parser) traefikHTTP(t *tfLabels) []*tfSpec {
	services := map[string]map[string]tfKey{} // translated once each
	for _, name := range slices.Sorted(maps.Keys(t.services)) {
		services[name] = p.traefikService(t.services[name])
	}
	mws := map[string]*tfMiddleware{}
	for _, name := range slices.Sorted(maps.Keys(t.middlewares)) {
		mws[name] = p.traefikMiddleware(t.middlewares[name])
	}
	var routers []*tfRouter
	for _, name := range slices.Sorted(maps.Keys(t.routers)) {
		if r := p.traefikRouter(t, t.routers[name], services, mws); r != nil {
			routers = append(routers, r)
		}
	}
	return p.joinRouters(routers)
}

// traefikRouter translates one HTTP router; nil when it cannot be.
func (p *parser) traefikRouter(t *tfLabels, obj *tfObject, services map[string]map[string]tfKey, mws map[string]*tfMiddleware) *tfRouter {
	prefix := traefikPrefix + "http.routers." + obj.name + "."
	r := &tfRouter{name: obj.name, keys: map[string]tfKey{}, alias: map[string]string{}}
	if !validRouteName(obj.name) {
		o := obj.keys["rule"]
		p.fail(prefix+"rule", o.orig, "router name %q: swarmgate route names are letters, digits, '-' and '_' (at most %d)", obj.name, maxNameLen)
		return nil
	}
	ok := true
	rule, hasRule := obj.keys["rule"]
	if !hasRule {
		p.fail(prefix+"rule", "", "required: swarmgate has no defaultRule (Traefik's is in its static configuration)")
		ok = false
	} else {
		r.rule = rule
		e, err := parseRule(rule.value, httpMatchers)
		if err == nil {
			r.alts, err = ruleAlts(e, false)
		}
		if err != nil {
			p.fail(rule.label, rule.orig, "%v", err)
			ok = false
		}
	}

	var tlsOn, tlsFalse bool
	var tlsKey *tfKey
	var httpEP, httpsEP bool
	for _, k := range slices.Sorted(maps.Keys(obj.keys)) {
		o := obj.keys[k]
		switch {
		case k == "rule":
		case k == "rulesyntax":
			if v := strings.ToLower(o.value); v != "v2" && v != "v3" {
				p.fail(o.label, o.orig, "want v2 or v3")
			}
		case k == "priority":
			r.keys["priority"] = tfKey{origin: o}
		case k == "entrypoints":
			for _, ep := range strings.Split(o.value, ",") {
				ep = strings.ToLower(strings.TrimSpace(ep))
				switch {
				case slices.Contains(traefikHTTPEntrypoints, ep):
					httpEP = true
				case slices.Contains(traefikHTTPSEntrypoints, ep):
					httpsEP = true
				default:
					p.fail(o.label, o.orig, "entrypoint %q: swarmgate's HTTP listeners are the entrypoints web (or http) and websecure (or https)", ep)
					ok = false
				}
			}
		case k == "tls":
			on, err := parseBool(o.value)
			if err != nil {
				p.fail(o.label, o.orig, "%v", err)
				ok = false
			}
			if on {
				tlsOn = true
				if tlsKey == nil || tlsKey.err != "" {
					tlsKey = &tfKey{origin: o, err: noCert(obj.name, "tls=true")}
				}
			} else {
				tlsFalse = true
			}
		case k == "tls.certresolver":
			tlsOn = true
			tlsKey = &tfKey{origin: origin{o.label, route.TLSAuto, o.orig}}
		case k == "tls.options":
			tlsOn = true
			if tlsKey == nil {
				tlsKey = &tfKey{origin: o, err: noCert(obj.name, "tls.options")}
			}
			if o.value != "default" {
				p.fail(o.label, o.orig, "TLS options are Traefik's static or file configuration; swarmgate's TLS settings are the edge's")
				ok = false
			}
		case strings.HasPrefix(k, "tls.domains["):
			tlsOn = true
			if tlsKey == nil {
				tlsKey = &tfKey{origin: o, err: noCert(obj.name, "tls.domains")}
			}
			if !p.traefikDomains(o, r.alts) {
				ok = false
			}
		case k == "service", k == "middlewares":
		case strings.HasPrefix(k, "observability."):
			p.fail(o.label, o.orig, "not supported by swarmgate: its access log and metrics cover every route")
			ok = false
		default:
			p.fail(o.label, o.orig, "router option %q is not supported by swarmgate", k)
			ok = false
		}
	}
	if tlsOn && tlsFalse {
		p.fail(obj.keys["tls"].label, obj.keys["tls"].orig, "contradicts the router's other tls options")
		ok = false
	}
	switch {
	case tlsOn && httpEP:
		p.fail(obj.keys["entrypoints"].label, obj.keys["entrypoints"].orig, "TLS on entrypoint web: swarmgate terminates TLS on its HTTPS listener (websecure) only")
		ok = false
	case tlsOn:
		r.https = true
		if tlsKey != nil {
			r.keys[keyTLS] = *tlsKey
		}
	case httpsEP && httpEP:
		p.fail(obj.keys["entrypoints"].label, obj.keys["entrypoints"].orig, "a router without tls options on both web and websecure: give the HTTPS side its own router with tls options")
		ok = false
	case httpsEP:
		ep := obj.keys["entrypoints"]
		r.https = true
		r.keys[keyTLS] = tfKey{origin: ep, err: "the router's TLS comes from Traefik's static configuration of entrypoint websecure; for ACME set tls.certresolver or swarmgate.routes." + obj.name + ".tls=auto, else name the certificate with swarmgate.routes." + obj.name + ".tls=NAME"}
	}

	// The service: named, or the only one the labels define, or an
	// implicit one named after the Swarm service (which has no port).
	svc := ""
	if o, named := obj.keys["service"]; named {
		name, err := traefikRef(o.value)
		if err == nil && services[name] == nil {
			err = fmt.Errorf("service %q is not defined by this service's labels (swarmgate reads each Swarm service's labels on their own)", name)
		}
		if err != nil {
			p.fail(o.label, o.orig, "%v", err)
			ok = false
		}
		svc = name
	} else {
		switch len(services) {
		case 0:
			svc = t.service
		case 1:
			for name := range services {
				svc = name
			}
		default:
			p.fail(prefix+"service", "", "the router names no service and the labels define %d (%s): Traefik refuses that too; set it",
				len(services), strings.Join(slices.Sorted(maps.Keys(services)), ", "))
			ok = false
		}
	}
	for k, v := range services[svc] {
		r.keys[k] = v
	}
	r.alias[keyPort] = traefikPrefix + "http.services." + svc + ".loadbalancer.server.port"

	if o, has := obj.keys["middlewares"]; has {
		if !p.applyMiddlewares(r, o, mws) {
			ok = false
		}
	}
	if !ok {
		p.deferred(t, obj.name, r.keys) // every problem, not only the first
		return nil
	}
	return r
}

// overridden reports whether a swarmgate label sets key for a Traefik
// route: the router's swarmgate.routes.<router>.<key> (o, if any), or the
// service-level label of an inherited key.
func (p *parser) overridden(def, o *spec, key string) bool {
	if o != nil {
		if _, ok := o.keys[key]; ok {
			return true
		}
	}
	if d := lookupKey(p.keys, key); d != nil && d.inherited {
		_, ok := def.keys[key]
		return ok
	}
	return false
}

// deferred reports the keys of a router that swarmgate cannot take as
// written and no swarmgate label sets.
func (p *parser) deferred(t *tfLabels, router string, keys map[string]tfKey) {
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if v := keys[k]; v.err != "" && !t.overridden(router, k) {
			p.fail(v.label, v.orig, "%s", v.err)
		}
	}
}

// noCert is the reason a router with TLS options but no certresolver is
// reported: its certificate is in Traefik's store.
func noCert(router, what string) string {
	return what + " without tls.certresolver serves a certificate from Traefik's own store (its file provider, default certificate or an entrypoint's resolver); for ACME set tls.certresolver or swarmgate.routes." + router + ".tls=auto, else name the certificate with swarmgate.routes." + router + ".tls=NAME"
}

// traefikDomains checks a tls.domains[n].main or .sans label: swarmgate's
// ACME asks for a certificate per host of the route, so the names must be
// hosts of the rule.
func (p *parser) traefikDomains(o origin, alts []ruleAlt) bool {
	for _, d := range strings.Split(o.value, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		if !slices.ContainsFunc(alts, func(a ruleAlt) bool { return slices.Contains(a.hosts, d) }) {
			p.fail(o.label, o.orig, "domain %q is not a host of the rule: swarmgate's ACME issues a certificate for each host of the route, and nothing else", d)
			return false
		}
	}
	return true
}

// traefikRef is a router's reference to a service or middleware: name, or
// name@swarm (or @docker), the provider that defines it in labels.
func traefikRef(v string) (string, error) {
	name, provider, ok := strings.Cut(strings.TrimSpace(v), "@")
	if name == "" {
		return "", fmt.Errorf("empty name")
	}
	if ok && provider != "swarm" && provider != "docker" {
		return "", fmt.Errorf("%q is defined by Traefik's %s provider; swarmgate reads only the labels of the service", v, provider)
	}
	return name, nil
}

// traefikService translates an HTTP service's options into route keys.
func (p *parser) traefikService(obj *tfObject) map[string]tfKey {
	keys := map[string]tfKey{}
	var stickyOn *origin
	stickyName := ""
	for _, k := range slices.Sorted(maps.Keys(obj.keys)) {
		o := obj.keys[k]
		switch k {
		case "loadbalancer.server.port":
			keys[keyPort] = tfKey{origin: o}
		case "loadbalancer.server.scheme":
			switch strings.ToLower(o.value) {
			case "http":
			case "https":
				keys[keyBackendTLS] = tfKey{origin: origin{o.label, route.BackendTLSOn, o.orig}}
			case "h2c":
				keys[keyH2C] = tfKey{origin: origin{o.label, "true", o.orig}}
			default:
				p.fail(o.label, o.orig, "want http, https or h2c")
			}
		case "loadbalancer.sticky.cookie":
			on, err := parseBool(o.value)
			if err != nil {
				p.fail(o.label, o.orig, "%v", err)
			} else if on {
				stickyOn = &o
			}
		case "loadbalancer.sticky.cookie.name":
			stickyOn, stickyName = &o, o.value
		case "loadbalancer.sticky.cookie.secure":
			// The edge marks the cookie Secure on HTTPS, where it can.
			stickyOn = orSet(stickyOn, o)
			if _, err := parseBool(o.value); err != nil {
				p.fail(o.label, o.orig, "%v", err)
			}
		case "loadbalancer.sticky.cookie.httponly":
			stickyOn = orSet(stickyOn, o)
			if on, err := parseBool(o.value); err != nil || !on {
				p.fail(o.label, o.orig, "swarmgate's affinity cookie is always HttpOnly")
			}
		case "loadbalancer.sticky.cookie.samesite":
			stickyOn = orSet(stickyOn, o)
			if !strings.EqualFold(o.value, "lax") {
				p.fail(o.label, o.orig, "swarmgate's affinity cookie is always SameSite=Lax")
			}
		case "loadbalancer.healthcheck.path":
			keys[keyHealthPath] = tfKey{origin: o}
		case "loadbalancer.healthcheck.interval":
			o.value = traefikSeconds(o.value)
			keys[keyHealthInterval] = tfKey{origin: o}
		case "loadbalancer.passhostheader":
			if on, err := parseBool(o.value); err != nil || !on {
				p.fail(o.label, o.orig, "swarmgate always passes the Host header on")
			}
		default:
			p.fail(o.label, o.orig, "service option %q is not supported by swarmgate", k)
		}
	}
	if stickyOn != nil {
		if stickyName == "" {
			stickyName = traefikCookieName(obj.name)
		}
		keys[keySticky] = tfKey{origin: origin{stickyOn.label, stickyName, stickyOn.orig}}
	}
	return keys
}

// withheld is a label of password hashes (secretLabel) whose value as
// written, which errors show, is replaced by how many users it lists:
// errors, and so the log, check and the admin API, never show a hash. The
// value itself stays, for the parser.
func withheld(o origin) origin {
	if o.value == "" {
		return o // nothing to withhold; "empty value" says it
	}
	n := len(strings.Split(o.value, ","))
	o.orig = fmt.Sprintf("(%d users, hashes withheld)", n)
	if n == 1 {
		o.orig = "(1 user, hash withheld)"
	}
	return o
}

func hasKey(obj *tfObject, k string) bool { _, ok := obj.keys[k]; return ok }

func orSet(o *origin, v origin) *origin {
	if o != nil {
		return o
	}
	return &v
}

// traefikCookieName is the affinity cookie's name when the labels give
// none, derived from the Traefik service name as Traefik derives its own.
func traefikCookieName(service string) string {
	sum := sha1.Sum([]byte("_TRAEFIK_BACKEND_" + service))
	return "_" + hex.EncodeToString(sum[:])[:5]
}

// traefikSeconds reads Traefik's bare numbers of seconds as durations.
func traefikSeconds(v string) string {
	if _, err := strconv.Atoi(v); err == nil {
		return v + "s"
	}
	return v
}

// tfMiddleware is a middleware translated once, applied to every router
// that names it.
type tfMiddleware struct {
	name     string
	kind     string // stripprefix, redirectscheme, ...
	keys     map[string]tfKey
	redirect *origin
	strip    []string
	stripAt  origin
	chain    []string // chain: the middlewares it runs
	chainAt  origin
	ok       bool
}

// traefikMiddleware translates one middleware's options into route keys.
func (p *parser) traefikMiddleware(obj *tfObject) *tfMiddleware {
	m := &tfMiddleware{name: obj.name, keys: map[string]tfKey{}, ok: true}
	fail := func(o origin, format string, args ...any) {
		p.fail(o.label, o.orig, format, args...)
		m.ok = false
	}
	set := func(key string, o origin, value string) {
		o.value = value
		m.keys[key] = tfKey{origin: o}
	}
	var stsAt *origin
	var stsDirectives []string
	var rateAt, periodAt *origin
	average, period := 0, "s"
	for _, k := range slices.Sorted(maps.Keys(obj.keys)) {
		o := obj.keys[k]
		kind, opt, _ := strings.Cut(k, ".")
		if m.kind == "" {
			m.kind = kind
		} else if m.kind != kind {
			fail(o, "middleware %q is a %s already: one kind per middleware", obj.name, m.kind)
			continue
		}
		switch kind + "." + opt {
		case "stripprefix.prefixes":
			for _, pfx := range strings.Split(o.value, ",") {
				m.strip = append(m.strip, strings.TrimSpace(pfx))
			}
			m.stripAt = o
		case "stripprefix.forceslash":
			if on, err := parseBool(o.value); err != nil || !on {
				fail(o, "swarmgate always forwards at least \"/\" after stripping")
			}
		case "redirectscheme.scheme":
			if !strings.EqualFold(o.value, "https") {
				fail(o, "swarmgate redirects to https only (the route's HTTPS side)")
			} else {
				m.redirect = &o
			}
		case "redirectscheme.permanent":
			// swarmgate's redirect to HTTPS is always permanent (301, 308).
			if _, err := parseBool(o.value); err != nil {
				fail(o, "%v", err)
			}
		case "redirectscheme.port":
			if o.value != "443" {
				fail(o, "swarmgate redirects to the edge's HTTPS port")
			}
		case "basicauth.users":
			// Withheld already (collectTraefik): errors show how many
			// users, never the hashes. With a usersfile too, the route
			// takes both, the file winning, as in Traefik.
			m.keys[keyAuthUsers] = tfKey{origin: o}
		case "basicauth.usersfile":
			name, ok := strings.CutPrefix(o.value, traefikSecrets)
			if !ok || strings.Contains(name, "/") {
				fail(o, "swarmgate reads htpasswd files from its secrets directory: attach the file as a Docker secret and give its path, %sNAME", traefikSecrets)
			} else {
				set(keyAuthBasic, o, name)
			}
		case "basicauth.realm":
			m.keys[keyRealm] = tfKey{origin: o}
		case "basicauth.removeheader":
			if on, err := parseBool(o.value); err != nil || !on {
				fail(o, "swarmgate never forwards the credentials: it always removes the Authorization field")
			}
		case "headers.stsseconds":
			stsAt = &o
		case "headers.stsincludesubdomains", "headers.stspreload":
			if on, err := parseBool(o.value); err != nil {
				fail(o, "%v", err)
			} else if on && stsAt == nil && !hasKey(obj, "headers.stsseconds") {
				fail(o, "needs headers.stsseconds")
			} else if on {
				stsDirectives = append(stsDirectives, map[string]string{"headers.stsincludesubdomains": "includeSubDomains", "headers.stspreload": "preload"}[k])
			}
		case "headers.accesscontrolalloworiginlist":
			m.keys[keyCORSOrigins] = tfKey{origin: o}
		case "headers.accesscontrolallowmethods":
			m.keys["cors.methods"] = tfKey{origin: o}
		case "headers.accesscontrolallowheaders":
			m.keys["cors.headers"] = tfKey{origin: o}
		case "headers.accesscontrolallowcredentials":
			m.keys[keyCORSCreds] = tfKey{origin: o}
		case "headers.accesscontrolmaxage":
			m.keys["cors.max-age"] = tfKey{origin: o}
		case "ratelimit.average":
			n, err := strconv.Atoi(o.value)
			if err != nil || n < 0 {
				fail(o, "want a whole number of requests")
			}
			average, rateAt = n, &o
		case "ratelimit.period":
			switch traefikSeconds(o.value) {
			case "1s":
			case "1m", "60s":
				period = "m"
			case "1h", "60m", "3600s":
				period = "h"
			default:
				fail(o, "swarmgate's rates are per second, minute or hour: want 1s, 1m or 1h")
			}
			periodAt = &o
		case "ratelimit.burst":
			m.keys[keyBurst] = tfKey{origin: o}
		case "ipallowlist.sourcerange", "ipwhitelist.sourcerange":
			m.keys["allow"] = tfKey{origin: o}
		case "chain.middlewares":
			for _, n := range strings.Split(o.value, ",") {
				m.chain = append(m.chain, strings.TrimSpace(n))
			}
			m.chainAt = o
		default:
			switch {
			case kind == "compress" && opt == "":
				set("compress", o, o.value)
			case kind == "headers" && strings.HasPrefix(opt, "customrequestheaders."):
				name := strings.TrimPrefix(opt, "customrequestheaders.")
				m.keys["headers.request."+name] = tfKey{origin: o}
			case kind == "headers" && strings.HasPrefix(opt, "customresponseheaders."):
				name := strings.TrimPrefix(opt, "customresponseheaders.")
				m.keys["headers.response."+name] = tfKey{origin: o}
			case slices.Contains([]string{"stripprefix", "redirectscheme", "basicauth", "headers", "ratelimit", "ipallowlist", "ipwhitelist", "compress", "chain"}, kind):
				fail(o, "%s option %q is not supported by swarmgate", kind, opt)
			default:
				fail(o, "middleware type %q is not supported by swarmgate (it maps stripprefix, redirectscheme, basicauth, headers, ratelimit, ipallowlist, ipwhitelist, compress and chain)", kind)
			}
		}
	}
	if stsAt != nil {
		set(keyHSTS, *stsAt, strings.Join(append([]string{traefikSeconds(stsAt.value)}, stsDirectives...), "; "))
	}
	switch {
	case rateAt != nil && average > 0:
		set(keyRateLimit, *rateAt, strconv.Itoa(average)+"/"+period)
		if _, ok := m.keys[keyBurst]; !ok {
			set(keyBurst, *rateAt, "1") // Traefik's default burst
		}
	case rateAt == nil && periodAt != nil:
		fail(*periodAt, "needs ratelimit.average")
	}
	if rateAt != nil && average == 0 {
		delete(m.keys, keyBurst) // average 0 is no limit, as in Traefik
	}
	return m
}

// applyMiddlewares adds a router's middlewares, chains expanded, to r. Two
// middlewares that set the same thing differently are an error: swarmgate
// applies one value per route.
func (p *parser) applyMiddlewares(r *tfRouter, o origin, mws map[string]*tfMiddleware) bool {
	ok := true
	seen := map[string]bool{}
	var walk func(names []string, at origin, depth int)
	walk = func(names []string, at origin, depth int) {
		for _, ref := range names {
			name, err := traefikRef(ref)
			m := mws[name]
			switch {
			case err != nil:
			case m == nil:
				err = fmt.Errorf("middleware %q is not defined by this service's labels (swarmgate reads each Swarm service's labels on their own)", name)
			case seen[name] && depth > 0:
				err = fmt.Errorf("middleware %q is in the chain twice (a loop?)", name)
			}
			if err != nil {
				p.fail(at.label, at.orig, "%v", err)
				ok = false
				continue
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			if !m.ok {
				ok = false
				continue
			}
			if m.chain != nil {
				walk(m.chain, m.chainAt, depth+1)
				continue
			}
			if m.redirect != nil {
				r.redirect = m.redirect
			}
			if m.strip != nil {
				r.strip, r.stripAt = m.strip, m.stripAt
			}
			for _, k := range slices.Sorted(maps.Keys(m.keys)) {
				v := m.keys[k]
				if prev, dup := r.keys[k]; dup && (prev.value != v.value || prev.err != v.err) {
					p.fail(v.label, v.orig, "contradicts %s=%q on the same router: swarmgate applies one %s per route", prev.label, prev.orig, k)
					ok = false
					continue
				}
				r.keys[k] = v
			}
		}
	}
	walk(strings.Split(o.value, ","), o, 0)
	return ok
}

// slot is what serves one host and path of a service: a router on each side.
type slot struct{ http, https *tfRouter }

// joinRouters turns routers into routes: one per set of hosts that the
// same routers serve under the same path, with a router on HTTP that
// redirects to HTTPS and a router on HTTPS joined as one route with TLS and
// its redirect (the shape of every Traefik example with TLS).
func (p *parser) joinRouters(routers []*tfRouter) []*tfSpec {
	type at struct {
		host  string // "" for a rule without Host: the default backend
		path  string
		exact bool
	}
	slots := map[at]*slot{}
	var order []at
	ok := true
	for _, r := range routers {
		for _, a := range r.alts {
			hosts := a.hosts
			if hosts == nil {
				hosts = []string{""}
			}
			for _, h := range hosts {
				k := at{h, a.path, a.exact}
				s := slots[k]
				if s == nil {
					s = &slot{}
					slots[k] = s
					order = append(order, k)
				}
				side := &s.http
				if r.https {
					side = &s.https
				}
				if *side != nil && *side != r {
					p.fail(r.rule.label, r.rule.orig, "routers %s and %s both match %s on %s: Traefik picks one by priority, swarmgate serves one route of a service there",
						(*side).name, r.name, describeAt(h, a.path), map[bool]string{false: "HTTP", true: "HTTPS"}[r.https])
					ok = false
					continue
				}
				*side = r
			}
		}
	}
	if !ok {
		return nil
	}

	// Group the hosts that the same pair of routers serves at one path.
	type group struct {
		s     slot
		path  string
		exact bool
		def   bool
		hosts []string
	}
	var groups []*group
	for _, k := range order {
		s := slots[k]
		i := slices.IndexFunc(groups, func(g *group) bool {
			return g.s == *s && g.path == k.path && g.exact == k.exact && g.def == (k.host == "")
		})
		if i < 0 {
			groups = append(groups, &group{s: *s, path: k.path, exact: k.exact, def: k.host == ""})
			i = len(groups) - 1
		}
		if k.host != "" {
			groups[i].hosts = append(groups[i].hosts, k.host)
		}
	}

	var specs []*tfSpec
	count := map[string]int{}
	for _, g := range groups {
		slices.Sort(g.hosts)
		primary := g.s.https
		if primary == nil {
			primary = g.s.http
		}
		name := primary.name
		if count[name]++; count[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, count[name])
		}
		s := &tfSpec{name: name, router: primary.name, keys: maps.Clone(primary.keys), alias: primary.alias, rule: primary.rule}
		if g.def {
			s.keys[keyDefault] = tfKey{origin: origin{primary.rule.label, "true", primary.rule.orig}}
		} else {
			s.keys[keyHosts] = tfKey{origin: origin{primary.rule.label, strings.Join(g.hosts, ","), primary.rule.orig}}
		}
		if g.path != "" {
			s.keys[keyPath] = tfKey{origin: origin{primary.rule.label, g.path, primary.rule.orig}}
		}
		if g.exact { // Path(): this path only, as in Traefik
			s.keys[keyExact] = tfKey{origin: origin{primary.rule.label, "true", primary.rule.orig}}
		}
		if !p.strip(s, primary, g.path) {
			ok = false
		}
		switch {
		case g.s.http != nil && g.s.https != nil && g.s.http.redirect != nil:
			s.keys[keyTLSRedirect] = tfKey{origin: origin{g.s.http.redirect.label, "true", g.s.http.redirect.orig}}
		case g.s.http != nil && g.s.https != nil:
			if diff := diffKeys(g.s.http.keys, g.s.https.keys); diff != "" {
				p.fail(g.s.http.rule.label, g.s.http.rule.orig, "routers %s (HTTP) and %s (HTTPS) serve %s with different %s: swarmgate applies one set to both sides of a route",
					g.s.http.name, g.s.https.name, describeAt(strings.Join(g.hosts, ","), g.path), diff)
				ok = false
			}
			s.keys[keyTLSRedirect] = tfKey{origin: origin{g.s.http.rule.label, "false", g.s.http.rule.orig}}
		case g.s.http != nil && g.s.http.redirect != nil:
			p.fail(g.s.http.redirect.label, g.s.http.redirect.orig, "router %s redirects %s to HTTPS, where no router of this service serves it: swarmgate redirects a route to its own HTTPS side; add the HTTPS router (tls options) to this service",
				g.s.http.name, describeAt(strings.Join(g.hosts, ","), g.path))
			ok = false
		}
		specs = append(specs, s)
	}
	if !ok {
		return nil
	}
	return specs
}

// strip sets path.strip when the router's stripprefix strips the route's
// own path prefix, the one thing swarmgate strips.
func (p *parser) strip(s *tfSpec, r *tfRouter, path string) bool {
	if r.strip == nil {
		return true
	}
	for _, pfx := range r.strip {
		if strings.TrimSuffix(pfx, "/") == strings.TrimSuffix(path, "/") && path != "" {
			s.keys[keyStrip] = tfKey{origin: origin{r.stripAt.label, "true", r.stripAt.orig}}
			return true
		}
	}
	if path == "" {
		path = "/"
	}
	p.fail(r.stripAt.label, r.stripAt.orig, "router %s serves the path %s, which these prefixes do not include: swarmgate strips the route's own path prefix, and nothing else", r.name, path)
	return false
}

func describeAt(hosts, path string) string {
	if hosts == "" {
		hosts = "any host"
	}
	if path == "" {
		path = "/"
	}
	return hosts + " " + path
}

// diffKeys names the keys whose values differ between two routers, TLS
// aside (that is what makes the sides differ).
func diffKeys(a, b map[string]tfKey) string {
	var diff []string
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, inA := a[k]; !inA {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == keyTLS {
			continue
		}
		x, inA := a[k]
		y, inB := b[k]
		if inA != inB || x.value != y.value || x.err != y.err {
			diff = append(diff, k)
		}
	}
	return strings.Join(diff, ", ")
}

// traefikTCP translates the TCP routers: TLS passthrough by SNI on the
// HTTPS listener, or raw TCP on a port that a swarmgate label gives.
func (p *parser) traefikTCP(t *tfLabels) []*tfSpec {
	services := map[string]map[string]tfKey{}
	for _, name := range slices.Sorted(maps.Keys(t.tcpServices)) {
		obj := t.tcpServices[name]
		keys := map[string]tfKey{}
		for _, k := range slices.Sorted(maps.Keys(obj.keys)) {
			o := obj.keys[k]
			switch k {
			case "loadbalancer.server.port":
				keys[keyPort] = tfKey{origin: o}
			case "loadbalancer.proxyprotocol.version":
				keys["tcp.proxy-protocol"] = tfKey{origin: o}
			default:
				p.fail(o.label, o.orig, "TCP service option %q is not supported by swarmgate", k)
			}
		}
		services[name] = keys
	}
	var specs []*tfSpec
	for _, name := range slices.Sorted(maps.Keys(t.tcpRouters)) {
		obj := t.tcpRouters[name]
		prefix := traefikPrefix + "tcp.routers." + name + "."
		if !validRouteName(name) {
			p.fail(prefix+"rule", obj.keys["rule"].orig, "router name %q: swarmgate route names are letters, digits, '-' and '_' (at most %d)", name, maxNameLen)
			continue
		}
		if _, clash := t.routers[name]; clash {
			p.fail(prefix+"rule", "", "an HTTP router of this service has the name %q too: swarmgate names its routes after the routers", name)
			continue
		}
		s := &tfSpec{name: name, router: name, keys: map[string]tfKey{}, alias: map[string]string{}, rule: obj.keys["rule"]}
		ok := true
		var alts []ruleAlt
		rule, hasRule := obj.keys["rule"]
		if !hasRule {
			p.fail(prefix+"rule", "", "required")
			ok = false
		} else {
			e, err := parseRule(rule.value, tcpMatchers)
			if err == nil {
				alts, err = ruleAlts(e, true)
			}
			if err != nil {
				p.fail(rule.label, rule.orig, "%v", err)
				ok = false
			}
		}
		passthrough, tlsOn := false, false
		for _, k := range slices.Sorted(maps.Keys(obj.keys)) {
			o := obj.keys[k]
			switch k {
			case "rule", "service", "entrypoints":
			case "priority":
				s.keys["priority"] = tfKey{origin: o}
			case "tls.passthrough":
				on, err := parseBool(o.value)
				if err != nil {
					p.fail(o.label, o.orig, "%v", err)
					ok = false
				}
				passthrough = on
			case "tls":
				on, err := parseBool(o.value)
				if err != nil {
					p.fail(o.label, o.orig, "%v", err)
					ok = false
				}
				tlsOn = on
			default:
				p.fail(o.label, o.orig, "TCP router option %q is not supported by swarmgate", k)
				ok = false
			}
		}
		hosts := []string{}
		anySNI := false
		for _, a := range alts {
			if a.hosts == nil {
				anySNI = true
			}
			hosts = append(hosts, a.hosts...)
		}
		hosts = sortedUnique(hosts)
		eps := obj.keys["entrypoints"]
		switch {
		case !ok:
		case passthrough && anySNI:
			p.fail(rule.label, rule.orig, "HostSNI(`*`) with tls.passthrough: swarmgate routes passthrough on its HTTPS listener by server name; list the names")
			ok = false
		case passthrough:
			for _, ep := range strings.Split(eps.value, ",") {
				if ep = strings.ToLower(strings.TrimSpace(ep)); ep != "" && !slices.Contains(traefikHTTPSEntrypoints, ep) {
					p.fail(eps.label, eps.orig, "entrypoint %q: swarmgate routes TLS passthrough on its HTTPS listener, the entrypoint websecure (or https)", ep)
					ok = false
				}
			}
			s.keys[keyTCPSNI] = tfKey{origin: origin{rule.label, strings.Join(hosts, ","), rule.orig}}
		case tlsOn:
			p.fail(obj.keys["tls"].label, obj.keys["tls"].orig, "swarmgate does not terminate TLS for TCP routes; use tls.passthrough=true")
			ok = false
		case anySNI && len(hosts) == 0:
			s.keys[keyTCPPort] = tfKey{origin: eps, err: "raw TCP on a Traefik entrypoint, whose port is in Traefik's static configuration: set swarmgate.routes." + name + ".tcp.port"}
			if eps.label == "" {
				s.keys[keyTCPPort] = tfKey{origin: rule, err: s.keys[keyTCPPort].err}
			}
		default:
			p.fail(rule.label, rule.orig, "HostSNI with names needs TLS: set tls.passthrough=true (swarmgate does not terminate TLS for TCP routes)")
			ok = false
		}
		svc := ""
		if o, named := obj.keys["service"]; named {
			n, err := traefikRef(o.value)
			if err == nil && services[n] == nil {
				err = fmt.Errorf("TCP service %q is not defined by this service's labels (swarmgate reads each Swarm service's labels on their own)", n)
			}
			if err != nil {
				p.fail(o.label, o.orig, "%v", err)
				ok = false
			}
			svc = n
		} else if len(services) == 1 {
			for n := range services {
				svc = n
			}
		} else if len(services) > 1 {
			p.fail(prefix+"service", "", "the router names no service and the labels define %d TCP services: set it", len(services))
			ok = false
		} else {
			svc = t.service
		}
		if !ok {
			p.deferred(t, name, s.keys)
			continue
		}
		for k, v := range services[svc] {
			s.keys[k] = v
		}
		s.alias[keyPort] = traefikPrefix + "tcp.services." + svc + ".loadbalancer.server.port"
		specs = append(specs, s)
	}
	return specs
}

// mergeTraefik adds the Traefik routes to the named ones. A
// swarmgate.routes.<router>.<key> label wins over the Traefik value of that
// key in every route of the router, and a service-level swarmgate.<key> of
// an inherited key (port, network, backend, cluster) wins in all of them;
// only then are the Traefik values that swarmgate cannot take reported.
func (p *parser) mergeTraefik(specs []*tfSpec, def *spec, named map[string]*spec) {
	overrides := map[string]*spec{}
	for _, s := range specs {
		if o, ok := named[s.router]; ok {
			overrides[s.router] = o
		}
	}
	taken := map[string]string{} // route name -> router
	for _, s := range specs {
		if r, dup := taken[s.name]; dup {
			p.fail(s.rule.label, s.rule.orig, "router %s makes a route named %s, as router %s does: rename a router", s.router, s.name, r)
			continue
		}
		taken[s.name] = s.router
		out := newSpec(s.name)
		out.alias = s.alias
		if o := overrides[s.router]; o != nil {
			maps.Copy(out.keys, o.keys)
		} else if prev, clash := named[s.name]; clash {
			// swarmgate.routes.web-2.* where router web makes a route web-2.
			maps.Copy(out.keys, prev.keys)
		}
		failed := false
		for _, k := range slices.Sorted(maps.Keys(s.keys)) {
			v := s.keys[k]
			if _, set := out.keys[k]; set || p.overridden(def, nil, k) {
				continue // swarmgate wins
			}
			if v.err != "" {
				p.fail(v.label, v.orig, "%s", v.err)
				failed = true
				continue
			}
			out.keys[k] = v.origin
		}
		if failed {
			// Reported; a route without the key would only draw a second,
			// less precise error.
			delete(named, s.name)
			continue
		}
		named[s.name] = out
	}
}
