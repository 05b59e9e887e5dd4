# Upstream versions of everything Outpost builds and bundles. Change them here only.
KUBERNETES_VERSION := v1.37.2
CONTAINERD_VERSION := v2.4.2
RUNC_VERSION       := v1.5.2
CNI_VERSION        := v1.9.1
CRICTL_VERSION     := v1.37.0
COREDNS_VERSION    := v1.15.0
PAUSE_IMAGE        := docker.io/outpostk8s/pause:3.10-outpost
COREDNS_IMAGE      := docker.io/outpostk8s/coredns:$(COREDNS_VERSION)-outpost
# local-path-provisioner's version is in scripts/images/local-path/go.mod; keep them equal.
LOCALPATH_VERSION  := v0.0.30
LOCALPATH_IMAGE    := docker.io/outpostk8s/local-path-provisioner:$(LOCALPATH_VERSION)-outpost
TEST_IMAGE         := docker.io/outpostk8s/optest:dev
