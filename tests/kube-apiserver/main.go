// kube-apiserver-harness: a real kube-apiserver with etcd embedded in the same process, for
// wxgate's tests. Loopback only, RBAC on, admission webhooks on, an admin token.
//
//	kube-apiserver-harness --dir DIR [--port N] [--no-stdin-watch] [--node-address IP] [-- extra kube-apiserver flags]
//	kube-apiserver-harness kcm [kube-controller-manager flags]   (optional second process)
//
// It writes DIR/kubeconfig (admin) and, once /readyz answers, DIR/ready, and prints
// "READY DIR/kubeconfig". It stops on SIGTERM, or when stdin closes (unless --no-stdin-watch).
//
// Node mode (--node-address, for tests/kube-node): the API server serves on that address (one
// on this machine only, such as 10.245.0.1/32 on lo) instead of 127.0.0.1 and advertises it, the
// lease endpoint reconciler writes it into the `kubernetes` Service's endpoints, the serving
// certificate also names what pods use (10.0.0.1, kubernetes.default.svc, ...), ServiceAccount
// admission stays on (pods get their token), and the API server reaches kubelets by InternalIP.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	_ "time/tzdata"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kasapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "kcm" {
		cmd := kcmapp.NewControllerManagerCommand()
		cmd.SetArgs(os.Args[2:])
		os.Exit(cli.Run(cmd))
	}
	dir := flag.String("dir", "", "state directory (required)")
	port := flag.Int("port", 0, "secure port (0: pick a free one)")
	noStdin := flag.Bool("no-stdin-watch", false, "do not stop when stdin closes")
	nodeAddress := flag.String("node-address", "", "node mode: serve on and advertise this address (see above)")
	flag.Parse()
	if *dir == "" {
		fail("--dir is required")
	}
	must(os.MkdirAll(*dir, 0o700))
	for _, f := range []string{"ready", "kubeconfig"} {
		_ = os.Remove(filepath.Join(*dir, f))
	}
	if *port == 0 {
		*port = freePort()
	}
	etcdClient, etcdPeer := freePort(), freePort()

	host := "127.0.0.1"
	ips := []net.IP{net.ParseIP(host)}
	names := []string{"localhost"}
	if *nodeAddress != "" {
		ip := net.ParseIP(*nodeAddress)
		if ip == nil || ip.To4() == nil {
			fail("--node-address must be an IPv4 address: " + *nodeAddress)
		}
		host = ip.String()
		// 10.0.0.1: the first address of the service range below, the `kubernetes` Service.
		ips = append(ips, ip, net.ParseIP("10.0.0.1"))
		names = append(names, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
	}
	certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey(host, ips, names)
	must(err)
	must(os.WriteFile(filepath.Join(*dir, "serving.crt"), certPEM, 0o600))
	must(os.WriteFile(filepath.Join(*dir, "serving.key"), keyPEM, 0o600))
	caPEM := lastPEMBlock(certPEM)
	must(os.WriteFile(filepath.Join(*dir, "ca.crt"), caPEM, 0o600))
	saKey, err := keyutil.MakeEllipticPrivateKeyPEM()
	must(err)
	must(os.WriteFile(filepath.Join(*dir, "sa.key"), saKey, 0o600))
	tokenBytes := make([]byte, 24)
	for i := range tokenBytes {
		tokenBytes[i] = byte(rand.IntN(256))
	}
	token := hex.EncodeToString(tokenBytes)
	must(os.WriteFile(filepath.Join(*dir, "tokens.csv"), []byte(token+",admin,admin,\"system:masters\"\n"), 0o600))

	cfg := embed.NewConfig()
	cfg.Name = "harness"
	cfg.Dir = filepath.Join(*dir, "etcd")
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"
	clientURL := mustURL(fmt.Sprintf("http://127.0.0.1:%d", etcdClient))
	peerURL := mustURL(fmt.Sprintf("http://127.0.0.1:%d", etcdPeer))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = clientURL, clientURL
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = peerURL, peerURL
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	etcd, err := embed.StartEtcd(cfg)
	must(err)
	select {
	case <-etcd.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		fail("etcd did not become ready in 60 s")
	}

	server := fmt.Sprintf("https://%s:%d", host, *port)
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["harness"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	kubeconfig.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	kubeconfig.Contexts["harness"] = &clientcmdapi.Context{Cluster: "harness", AuthInfo: "admin", Namespace: "default"}
	kubeconfig.CurrentContext = "harness"
	must(clientcmd.WriteToFile(*kubeconfig, filepath.Join(*dir, "kubeconfig")))

	args := []string{
		"--etcd-servers=" + clientURL[0].String(),
		"--bind-address=" + host, "--advertise-address=" + host, "--secure-port=" + strconv.Itoa(*port),
		"--tls-cert-file=" + filepath.Join(*dir, "serving.crt"), "--tls-private-key-file=" + filepath.Join(*dir, "serving.key"),
		"--token-auth-file=" + filepath.Join(*dir, "tokens.csv"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(*dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(*dir, "sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24", "--allow-privileged=true",
		"--profiling=false", "--v=0",
		"--enable-priority-and-fairness=false",
		"--cert-dir=" + filepath.Join(*dir, "certs"),
	}
	if *nodeAddress == "" {
		args = append(args, "--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none")
	} else {
		args = append(args, "--endpoint-reconciler-type=lease", "--kubelet-preferred-address-types=InternalIP")
	}
	args = append(args, flag.Args()...)
	cmd := kasapp.NewAPIServerCommand()
	cmd.SetArgs(args)

	go waitReady(server, token, caPEM, *dir)
	if !*noStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}()
	}
	code := cli.Run(cmd)
	etcd.Close()
	os.Exit(code)
}

func waitReady(server, token string, caPEM []byte, dir string) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				must(os.WriteFile(filepath.Join(dir, "ready"), []byte(server+"\n"), 0o600))
				fmt.Println("READY " + filepath.Join(dir, "kubeconfig"))
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func lastPEMBlock(pemBytes []byte) []byte {
	// GenerateSelfSignedCertKey returns the leaf then the CA certificate.
	certs, err := cert.ParseCertsPEM(pemBytes)
	must(err)
	out, err := cert.EncodeCertificates(certs[len(certs)-1])
	must(err)
	return out
}

func mustURL(s string) []url.URL {
	u, err := url.Parse(s)
	must(err)
	return []url.URL{*u}
}

func must(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "kube-apiserver-harness:", msg)
	os.Exit(1)
}
