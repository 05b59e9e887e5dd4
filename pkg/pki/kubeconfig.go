package pki

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
)

// Kubeconfig writes a self-contained kubeconfig (certificates inline) for the client cert
// dir/name.crt, so the file still works when copied to another machine.
func Kubeconfig(path, server string, caPEM []byte, certDir, name string, mode os.FileMode) error {
	crt, err := os.ReadFile(filepath.Join(certDir, name+".crt"))
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	key, err := os.ReadFile(filepath.Join(certDir, name+".key"))
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	b64 := base64.StdEncoding.EncodeToString
	body := kubeconfigYAML(server, name, "-data", b64(caPEM), b64(crt), b64(key))
	return WriteFile(path, []byte(body), mode)
}

// KubeconfigFiles writes a kubeconfig that names the CA, certificate and key files instead of
// embedding them. The in-process components use these: client-go reloads certificate files
// that change, so a certificate renewed while the server runs reaches every client.
func KubeconfigFiles(path, server, caFile, certDir, name string) error {
	body := kubeconfigYAML(server, name, "", caFile, filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"))
	return WriteFile(path, []byte(body), 0o600)
}

// kubeconfigYAML is one cluster, one user, one context; suffix "-data" for inline (base64)
// values, "" for file paths.
func kubeconfigYAML(server, user, suffix, ca, crt, key string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: outpost
  cluster:
    server: %[1]s
    certificate-authority%[3]s: %[4]s
users:
- name: %[2]s
  user:
    client-certificate%[3]s: %[5]s
    client-key%[3]s: %[6]s
contexts:
- name: outpost
  context:
    cluster: outpost
    user: %[2]s
current-context: outpost
`, server, user, suffix, ca, crt, key)
}
