package config

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultKubernetesVersion is the version a cluster gets when its config names none.
const DefaultKubernetesVersion = "v1.37.2"

// The Kubernetes minor versions kforge knows how to install; templates and preflight checks depend on them.
const (
	minSupportedMinor = 35
	maxSupportedMinor = 37
)

// Version is a Kubernetes release version.
type Version struct {
	Major, Minor, Patch int
}

// ParseVersion reads "v1.37.2" or "1.37.2".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("%q is not a version of the form v1.MINOR.PATCH", s)
	}
	var v Version
	for i, dst := range []*int{&v.Major, &v.Minor, &v.Patch} {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 || (len(parts[i]) > 1 && parts[i][0] == '0') {
			return Version{}, fmt.Errorf("%q is not a version of the form v1.MINOR.PATCH", s)
		}
		*dst = n
	}
	return v, nil
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// supported says whether kforge can install v, and if not, why.
func (v Version) supported() error {
	if v.Major != 1 || v.Minor < minSupportedMinor || v.Minor > maxSupportedMinor {
		return fmt.Errorf("kforge installs Kubernetes v1.%d to v1.%d; %s is outside that range", minSupportedMinor, maxSupportedMinor, v)
	}
	return nil
}
