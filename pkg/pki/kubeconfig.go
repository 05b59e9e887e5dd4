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
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: outpost
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: outpost
  context:
    cluster: outpost
    user: %s
current-context: outpost
`, server, b64(caPEM), name, b64(crt), b64(key), name)
	return WriteFile(path, []byte(body), mode)
}

// KubeconfigFiles writes a kubeconfig that names the CA, certificate and key files instead of
// embedding them. The in-process components use these: client-go reloads certificate files
// that change, so a certificate renewed while the server runs reaches every client.
func KubeconfigFiles(path, server, caFile, certDir, name string) error {
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: outpost
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: outpost
  context:
    cluster: outpost
    user: %s
current-context: outpost
`, server, caFile, name, filepath.Join(certDir, name+".crt"), filepath.Join(certDir, name+".key"), name)
	return WriteFile(path, []byte(body), 0o600)
}
