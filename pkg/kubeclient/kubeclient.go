// Package kubeclient makes API clients from the kubeconfig files Outpost writes, each
// announcing itself as outpost/VERSION: the one place the server, the node and the tools do it.
package kubeclient

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/outpostk8s/outpost/pkg/version"
)

// Config reads a kubeconfig file.
func Config(kubeconfig string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("client from %s: %w", kubeconfig, err)
	}
	rc.UserAgent = "outpost/" + version.Outpost
	return rc, nil
}

// New is a clientset with the identity the kubeconfig file names.
func New(kubeconfig string) (kubernetes.Interface, error) {
	rc, err := Config(kubeconfig)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}
