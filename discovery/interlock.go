package discovery

import (
	"fmt"
	"slices"
	"strings"

	"github.com/swarmgate/swarmgate/route"
)

// Docker Enterprise Interlock labels (com.docker.lb.<key>), read so that an
// Interlock stack moves over unchanged. Interlock publishes one route per
// service, so they all feed the default route; a swarmgate.* label for the
// same key wins. The constants are the Interlock keys that the code below
// names; interlockKeys lists them all.
const (
	ilSSLCert          = "ssl_cert"
	ilSSLKey           = "ssl_key"
	ilSSLPassthrough   = "ssl_passthrough"
	ilSSLBackend       = "ssl_backend"
	ilSSLBackendVerify = "ssl_backend_tls_verify"
	ilStickyCookie     = "sticky_session_cookie"
	ilIPHash           = "ip_hash"
	ilRedirects        = "redirects"
	ilBackendMode      = "backend_mode"
)

// interlockKey is one Interlock key: the swarmgate key (a row of routeKeys)
// whose value it is as written, or "" when interlock translates it.
type interlockKey struct {
	name string // after "com.docker.lb."
	key  string
}

// interlockKeys lists every Interlock key that is read, sorted: the known
// keys, the suggestions, the direct mapping and the label that errors about
// a missing swarmgate key name on an Interlock-only service all come from it.
func interlockKeys() []interlockKey {
	return []interlockKey{
		{ilBackendMode, ""},
		{"context_root", keyPath},
		{"context_root_rewrite", keyStrip},
		{"default_backend", keyDefault},
		{"hosts", keyHosts},
		{ilIPHash, ""},
		{"network", keyNetwork},
		{"port", keyPort},
		{ilRedirects, ""},
		{"service_cluster", keyCluster},
		{ilSSLBackend, ""},
		{ilSSLBackendVerify, ""},
		{ilSSLCert, ""},
		{ilSSLKey, ""},
		{ilSSLPassthrough, ""},
		{ilStickyCookie, keySticky},
		{"websocket_endpoints", ""}, // every route upgrades WebSockets
	}
}

// interlockLabelFor names the Interlock label that sets a swarmgate key as
// is, for errors about a missing value; "" when Interlock has none.
func interlockLabelFor(key string) string {
	for _, k := range interlockKeys() {
		if k.key == key {
			return interlockPrefix + k.name
		}
	}
	return ""
}

// interlock translates the com.docker.lb.* labels into default-route keys in
// swarmgate syntax; each origin keeps the Interlock label and value, so that
// errors name what the operator wrote. names is the sorted label list.
//
// Mapping (see LABELS.md): ssl_cert names a Docker secret; the route's
// certificate is that name without a trailing .cert, .crt or .pem, and the
// edge finds it as NAME.crt + NAME.key in its certificate directory, where
// the two secrets must be attached (Interlock attached them to its proxy the
// same way). ssl_backend without ssl_backend_tls_verify=required re-encrypts
// without verifying, as Interlock's default "none" did. redirects are 302s, as
// Interlock's were.
func (p *parser) interlock(labels map[string]string, names []string) map[string]origin {
	out := map[string]origin{}
	raw := map[string]origin{}
	keys := interlockKeys()
	for _, label := range names {
		k, ok := strings.CutPrefix(label, interlockPrefix)
		if !ok {
			continue
		}
		v := labels[label]
		i := slices.IndexFunc(keys, func(ik interlockKey) bool { return ik.name == k })
		if i < 0 {
			cands := make([]string, len(keys))
			for j, ik := range keys {
				cands[j] = ik.name
			}
			p.fail(label, v, "unknown Interlock label%s", suggest(k, cands, interlockPrefix))
			continue
		}
		o := origin{label: label, value: strings.TrimSpace(v), orig: v}
		raw[k] = o
		if key := keys[i].key; key != "" {
			out[key] = o
		}
	}
	if len(raw) == 0 {
		return out
	}
	set := func(key string, o origin, value string) {
		o.value = value
		out[key] = o
	}
	boolean := func(k string) (bool, bool) {
		o, ok := raw[k]
		if !ok {
			return false, false
		}
		b, err := parseBool(o.value)
		if err != nil {
			p.fail(o.label, o.orig, "%v", err)
			return false, false
		}
		return b, true
	}

	// Certificates: the pair or nothing.
	cert, hasCert := raw[ilSSLCert]
	key, hasKey := raw[ilSSLKey]
	switch {
	case hasCert && !hasKey:
		p.fail(cert.label, cert.orig, "needs %s%s (the Docker secret with the private key)", interlockPrefix, ilSSLKey)
	case hasKey && !hasCert:
		p.fail(key.label, key.orig, "needs %s%s (the Docker secret with the certificate)", interlockPrefix, ilSSLCert)
	case hasCert:
		name := certNameFromSecret(cert.value)
		if !validCertName(name) {
			p.fail(cert.label, cert.orig, "want a Docker secret name: letters, digits, '.', '_' and '-', starting with a letter or digit")
		} else {
			set(keyTLS, cert, name)
		}
		if !validCertName(key.value) {
			p.fail(key.label, key.orig, "want a Docker secret name: letters, digits, '.', '_' and '-', starting with a letter or digit")
		}
	}
	if on, ok := boolean(ilSSLPassthrough); ok && on {
		if hasCert {
			p.fail(raw[ilSSLPassthrough].label, raw[ilSSLPassthrough].orig,
				"passthrough leaves TLS to the service; it contradicts %s%s", interlockPrefix, ilSSLCert)
		} else {
			set(keyTLS, raw[ilSSLPassthrough], route.TLSPassthrough)
		}
	}

	// Re-encryption to the tasks. Interlock's verify modes are "none" (its
	// default) and "required".
	verify := route.BackendTLSInsecure
	if o, ok := raw[ilSSLBackendVerify]; ok {
		switch strings.ToLower(o.value) {
		case "none":
		case "required":
			verify = route.BackendTLSOn
		default:
			p.fail(o.label, o.orig, "want none or required")
		}
	}
	if on, ok := boolean(ilSSLBackend); ok && on {
		set(keyBackendTLS, raw[ilSSLBackend], verify)
	}

	if on, ok := boolean(ilIPHash); ok && on {
		if _, sticky := raw[ilStickyCookie]; sticky {
			p.fail(raw[ilIPHash].label, raw[ilIPHash].orig, "contradicts %s%s: choose one kind of affinity", interlockPrefix, ilStickyCookie)
		} else {
			set(keyBalancer, raw[ilIPHash], route.BalancerIPHash)
		}
	}

	if o, ok := raw[ilBackendMode]; ok {
		switch strings.ToLower(o.value) {
		case "default", route.BackendTask: // Interlock documents "default" as task mode
			set(keyBackend, o, route.BackendTask)
		case route.BackendVIP:
			set(keyBackend, o, route.BackendVIP)
		default:
			p.fail(o.label, o.orig, "want task, vip or default")
		}
	}

	if o, ok := raw[ilRedirects]; ok {
		if v, err := interlockRedirects(o.value); err != nil {
			p.fail(o.label, o.orig, "%v", err)
		} else {
			set(keyRedirects, o, v)
		}
	}
	return out
}

// certNameFromSecret drops the extension Interlock users give certificate
// secrets (example.org.cert), so that ssl_cert=example.org.cert and
// ssl_key=example.org.key name the certificate "example.org".
func certNameFromSecret(s string) string {
	for _, ext := range []string{".cert", ".crt", ".pem"} {
		if n, ok := strings.CutSuffix(s, ext); ok && n != "" {
			return n
		}
	}
	return s
}

// interlockRedirects rewrites Interlock's "<source>,<target>" rules
// (";"-separated) as swarmgate "FROM=>TO 302" rules; parseRedirects
// validates the two ends later.
func interlockRedirects(v string) (string, error) {
	var rules []string
	parts := strings.Split(v, ";")
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			if i == len(parts)-1 && i > 0 { // Interlock's docs end the list with ";"
				continue
			}
			return "", fmt.Errorf("rule %d: empty rule", i+1)
		}
		from, to, ok := strings.Cut(part, ",")
		if !ok || strings.Contains(to, ",") || strings.Contains(part, "=>") {
			return "", fmt.Errorf("rule %d %q: want <source>,<target>", i+1, part)
		}
		rules = append(rules, strings.TrimSpace(from)+"=>"+strings.TrimSpace(to)+" 302")
	}
	return strings.Join(rules, ";"), nil
}
