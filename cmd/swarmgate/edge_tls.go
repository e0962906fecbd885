package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/pflag"
)

// tlsOptions are the edge's TLS, ACME and PROXY protocol flags.
type tlsOptions struct {
	certs         string
	defaultCert   string
	selfSigned    bool
	acme          bool
	acmeEmail     string
	acmeDirectory string
	acmeCache     string
	fs            *pflag.FlagSet // where the flags are, to tell a given --acme-cache from its default
	acmeCA        string
	proxyFrom     string
	trustedFrom   string
	tcpHost       string
}

func (o *tlsOptions) flags(f *pflag.FlagSet) {
	o.fs = f
	f.StringVar(&o.certs, "certs", "/run/secrets", "certificate directory: NAME.crt + NAME.key or NAME.pem (Docker secrets attached to the edge appear in /run/secrets)")
	f.StringVar(&o.defaultCert, "default-cert", "", "certificate NAME served when no certificate or route matches the TLS server name")
	f.BoolVar(&o.selfSigned, "self-signed", false, "serve a generated self-signed certificate when nothing else matches")
	f.BoolVar(&o.acme, "acme", false, "obtain certificates with ACME for routes labelled swarmgate.tls=auto (accepts the CA's terms of service)")
	f.StringVar(&o.acmeEmail, "acme-email", "", "ACME account contact")
	f.StringVar(&o.acmeDirectory, "acme-directory", "", "ACME directory URL (default Let's Encrypt production)")
	f.StringVar(&o.acmeCache, "acme-cache", "/var/lib/swarmgate/acme", "ACME account and certificate cache directory (a volume) of an edge without --control; with --control, ACME state is the fleet's, kept by the control plane, unless this is given")
	f.StringVar(&o.acmeCA, "acme-ca", "", "PEM file of CA roots for talking to the ACME directory (a private or test CA)")
	f.StringVar(&o.proxyFrom, "proxy-protocol-from", "", "comma-separated CIDRs of load balancers that send a PROXY protocol v1/v2 header on every connection")
	f.StringVar(&o.trustedFrom, "trusted-proxies", "", "comma-separated CIDRs of proxies whose Forwarded, X-Real-IP, X-Forwarded-Port and X-Forwarded-Prefix headers are passed on (default: --proxy-protocol-from); from other clients they are replaced or removed")
	f.StringVar(&o.tcpHost, "tcp-host", "", "address the TCP route ports (swarmgate.tcp.port) listen on; empty: all")
}

// ownACMECache reports whether --acme-cache was given: the edge keeps its
// own ACME state even with --control.
func (o *tlsOptions) ownACMECache() bool { return o.fs != nil && o.fs.Changed("acme-cache") }

func (o *tlsOptions) trustedProxies() ([]netip.Prefix, error) {
	return parseCIDRs("--proxy-protocol-from", o.proxyFrom)
}

// trustedForwarders is nil when --trusted-proxies is not given.
func (o *tlsOptions) trustedForwarders() ([]netip.Prefix, error) {
	if strings.TrimSpace(o.trustedFrom) == "" {
		return nil, nil
	}
	return parseCIDRs("--trusted-proxies", o.trustedFrom)
}

// parseCIDRs reads a comma list of CIDRs or single addresses.
func parseCIDRs(flag, list string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", flag, s, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", flag, s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
