package discovery

import (
	"fmt"
	"strings"

	"github.com/swarmgate/swarmgate/route"
)

// Docker Enterprise Interlock labels (com.docker.lb.<key>), read so that an
// Interlock stack moves over unchanged. Interlock publishes one route per
// service, so they all feed the default route; a swarmgate.* label for the
// same key wins.
const (
	ilHosts              = "hosts"
	ilPort               = "port"
	ilNetwork            = "network"
	ilContextRoot        = "context_root"
	ilContextRootRewrite = "context_root_rewrite"
	ilSSLCert            = "ssl_cert"
	ilSSLKey             = "ssl_key"
	ilSSLPassthrough     = "ssl_passthrough"
	ilSSLBackend         = "ssl_backend"
	ilSSLBackendVerify   = "ssl_backend_tls_verify"
	ilStickyCookie       = "sticky_session_cookie"
	ilIPHash             = "ip_hash"
	ilRedirects          = "redirects"
	ilWebsocket          = "websocket_endpoints"
	ilServiceCluster     = "service_cluster"
	ilBackendMode        = "backend_mode"
	ilDefaultBackend     = "default_backend"
)

func interlockKeys() []string {
	return []string{
		ilBackendMode, ilContextRoot, ilContextRootRewrite, ilDefaultBackend, ilHosts,
		ilIPHash, ilNetwork, ilPort, ilRedirects, ilServiceCluster, ilSSLBackend,
		ilSSLBackendVerify, ilSSLCert, ilSSLKey, ilSSLPassthrough, ilStickyCookie, ilWebsocket,
	}
}

// interlockDirect maps the Interlock keys whose values already read as the
// swarmgate key's values.
func interlockDirect(k string) string {
	switch k {
	case ilHosts:
		return keyHosts
	case ilPort:
		return keyPort
	case ilNetwork:
		return keyNetwork
	case ilContextRoot:
		return keyPath
	case ilContextRootRewrite:
		return keyStrip
	case ilStickyCookie:
		return keySticky
	case ilServiceCluster:
		return keyCluster
	case ilDefaultBackend:
		return keyDefault
	}
	return ""
}

// interlockLabelFor names the Interlock label behind a swarmgate key, for
// errors about a missing value; "" when Interlock has none.
func interlockLabelFor(key string) string {
	switch key {
	case keyHosts:
		return interlockPrefix + ilHosts
	case keyPort:
		return interlockPrefix + ilPort
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
	for _, label := range names {
		k, ok := strings.CutPrefix(label, interlockPrefix)
		if !ok {
			continue
		}
		v := labels[label]
		if !knownInterlockKey(k) {
			p.fail(label, v, "unknown Interlock label%s", suggest(k, interlockKeys(), interlockPrefix))
			continue
		}
		raw[k] = origin{label: label, value: strings.TrimSpace(v), orig: v}
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

	for k, o := range raw {
		if key := interlockDirect(k); key != "" {
			out[key] = o
		}
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
	// websocket_endpoints needs no mapping: every route upgrades WebSockets.
	return out
}

func knownInterlockKey(k string) bool {
	for _, x := range interlockKeys() {
		if x == k {
			return true
		}
	}
	return false
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
