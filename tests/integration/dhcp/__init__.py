"""Real-server DHCP harness: a network-namespace pair, server launchers, a pcap reader."""
