package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
)

// plainHTTP reports whether suite runs over plain HTTP, where stdproxy
// (which speaks no TLS and no L4) takes part.
func plainHTTP(suite string) bool {
	switch suite {
	case "http", "bodies", "close", "idle", "ws":
		return true
	}
	return false
}

// hostHeader is the Host of every request, and the TLS server name.
const hostHeader = "bench.local"

// tlsCiphers are the TLS 1.2 suites swarmgate allows (AEAD, ECDHE-ECDSA),
// in OpenSSL's names, for NGINX and HAProxy.
const tlsCiphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

// confData is what the configuration templates of bench/conf are executed
// with.
type confData struct {
	Dir          string // the proxy's own directory: pid, logs, temp files
	Certs        string // the directory of bench.crt, bench.key and bench.pem
	ProxyPort    int
	BackendPort  int
	Root         bool   // running as root: NGINX's workers stay root to reach Dir
	StreamModule string // NGINX's dynamic stream module, or "" if it is built in
	Ciphers      string
	Hold         bool // the idle and ws suites: room for tens of thousands of connections
}

// render executes the template dir/PROXY-SUITE.* (one file per
// configuration) with the definitions it shares with its siblings,
// dir/PROXY.common.
func render(dir, proxy, suite string, data confData) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, proxy+"-"+suite+".*"))
	if err != nil || len(files) != 1 {
		return "", fmt.Errorf("conf: want one template %s-%s.* in %s, found %d", proxy, suite, dir, len(files))
	}
	common := filepath.Join(dir, proxy+".common")
	if _, err := os.Stat(common); err != nil {
		return "", fmt.Errorf("conf: %w", err)
	}
	t, err := template.New(proxy).Option("missingkey=error").ParseFiles(common, files[0])
	if err != nil {
		return "", fmt.Errorf("conf: %w", err)
	}
	var out bytes.Buffer
	if err := t.ExecuteTemplate(&out, filepath.Base(files[0]), data); err != nil {
		return "", fmt.Errorf("conf: %w", err)
	}
	return out.String(), nil
}

// started is a proxy that runs for one suite.
type started struct {
	p      *proc
	log    string // the file with its own log (NGINX: error.log)
	config string // its configuration file, "" if it has none
}

// startProxy writes name's configuration for suite under the work
// directory and starts it pinned to the proxy core. The HTTP suite's
// listener is proxy-port; the TLS suite's HTTPS listener is proxy-port and
// its plain HTTP one proxy-port+1; the L4 suite's TCP listener is
// proxy-port (plain HTTP on proxy-port+1, no HTTPS listener). The slow
// suite's listener is the HTTP suite's; the HTTPS suite's listeners and
// configurations are the TLS suite's.
func (b *bench) startProxy(name, suite string) (started, error) {
	switch suite {
	case "https":
		suite = "tls" // the same listeners and configurations
	case "bodies", "close":
		suite = "http"
	case "idle", "ws":
		suite = "hold"
	}
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return started{}, fmt.Errorf("%s: %w", name, err)
	}
	data := confData{
		Dir: dir, Certs: b.certs, ProxyPort: b.o.proxyPort, BackendPort: b.o.backendPort,
		Root: os.Geteuid() == 0, StreamModule: b.o.nginxStream, Ciphers: tlsCiphers, Hold: suite == "hold",
	}
	port := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	var s started
	var argv []string
	switch name {
	case "swarmgate":
		if b.o.swarmgate == "" {
			return started{}, fmt.Errorf("swarmgate: %s", b.o.swarmgateErr)
		}
		s.config = filepath.Join(dir, "routes.yaml")
		listen := map[string][]string{
			"http": {"--http", port(b.o.proxyPort), "--https", ""},
			"slow": {"--http", port(b.o.proxyPort), "--https", ""},
			"hold": {"--http", port(b.o.proxyPort), "--https", ""},
			"tls":  {"--http", port(b.o.proxyPort + 1), "--https", port(b.o.proxyPort), "--certs", b.certs},
			"l4":   {"--http", port(b.o.proxyPort + 1), "--https", "", "--tcp-host", "127.0.0.1"},
		}[suite]
		argv = append(append([]string{b.o.swarmgate, "edge"}, listen...),
			"--admin", "", "--routes", s.config, "--access-log=false", "--log-level", "warn")
		s.log = filepath.Join(dir, "log")
	case "nginx":
		for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return started{}, fmt.Errorf("nginx: %w", err)
			}
		}
		s.config = filepath.Join(dir, "nginx.conf")
		s.log = filepath.Join(dir, "error.log")
		argv = []string{"nginx", "-p", dir, "-c", s.config, "-e", s.log, "-g", "daemon off;"}
	case "haproxy":
		s.config = filepath.Join(dir, "haproxy.cfg")
		s.log = filepath.Join(dir, "log")
		argv = []string{"haproxy", "-db", "-f", s.config}
	case "stdproxy":
		if suite != "http" && suite != "hold" {
			return started{}, errors.New("stdproxy: HTTP only")
		}
		s.log = filepath.Join(dir, "log")
		argv = []string{filepath.Join(b.o.bin, "stdproxy"), "-listen", port(b.o.proxyPort), "-backend", port(b.o.backendPort)}
	default:
		return started{}, fmt.Errorf("unknown proxy %q", name)
	}
	if s.config != "" {
		text, err := render(b.o.conf, name, suite, data)
		if err != nil {
			return started{}, fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(s.config, []byte(text), 0o644); err != nil {
			return started{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	p, err := b.start(name, b.o.proxyCPU, filepath.Join(dir, "log"), argv...)
	if err != nil {
		return started{}, err
	}
	if s.log != p.logs[0] {
		p.logs = append(p.logs, s.log)
	}
	s.p = p
	return s, nil
}
