// kube-node: the node components of Kubernetes in one multi-call binary, built from the same
// k8s.io/kubernetes module (and version) as the kube-apiserver harness, for wxgate's tests.
//
//	kube-node kubelet [kubelet flags]
//	kube-node proxy [kube-proxy flags]
//	kube-node scheduler [kube-scheduler flags]
package main

import (
	"context"
	"fmt"
	"os"

	_ "time/tzdata"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	proxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	commands := map[string]func() *cobra.Command{
		"kubelet":   func() *cobra.Command { return kubeletapp.NewKubeletCommand(context.Background()) },
		"proxy":     proxyapp.NewProxyCommand,
		"scheduler": func() *cobra.Command { return schedulerapp.NewSchedulerCommand() },
	}
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: kube-node kubelet|proxy|scheduler [flags]")
		os.Exit(2)
	}
	cmd := commands[os.Args[1]]()
	cmd.SetArgs(os.Args[2:])
	os.Exit(cli.Run(cmd))
}
