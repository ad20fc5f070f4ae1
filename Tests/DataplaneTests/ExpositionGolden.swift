// SPDX-License-Identifier: Apache-2.0
// The texts ExpositionTests pins (taken from the string-built renderers before the counters had a type).
// swift-format-ignore-file

enum ExpositionGolden {
  static let prometheus = """
    # HELP espd_packets_total Packets by verdict.
    # TYPE espd_packets_total counter
    espd_packets_total{verdict="decapsulated"} 1
    espd_packets_total{verdict="encapsulated"} 2
    espd_packets_total{verdict="ike"} 3
    espd_packets_total{verdict="keepalive"} 4
    espd_packets_total{verdict="passed"} 5
    espd_packets_total{verdict="dropped"} 371
    # HELP espd_drops_total Packets dropped, by reason.
    # TYPE espd_drops_total counter
    espd_drops_total{reason="unknown_spi"} 20
    espd_drops_total{reason="auth_failed"} 21
    espd_drops_total{reason="replayed"} 22
    espd_drops_total{reason="outside_window"} 23
    espd_drops_total{reason="malformed"} 24
    espd_drops_total{reason="bad_padding"} 25
    espd_drops_total{reason="selector_mismatch"} 26
    espd_drops_total{reason="no_route"} 27
    espd_drops_total{reason="sequence_exhausted"} 28
    espd_drops_total{reason="too_big"} 29
    espd_drops_total{reason="crypto_failure"} 30
    espd_drops_total{reason="no_peer"} 31
    espd_drops_total{reason="dummy"} 32
    espd_drops_total{reason="expired"} 33
    # HELP espd_tun_write_dropped_total Decapsulated packets the TUN did not take (its queue was full).
    # TYPE espd_tun_write_dropped_total counter
    espd_tun_write_dropped_total 100
    # HELP espd_udp_send_dropped_total ESP datagrams the kernel did not take (socket buffer full).
    # TYPE espd_udp_send_dropped_total counter
    espd_udp_send_dropped_total 101
    # HELP espd_keepalives_sent_total NAT-keepalives sent (RFC 3948 section 4).
    # TYPE espd_keepalives_sent_total counter
    espd_keepalives_sent_total 102
    # HELP espd_ike_punted_total IKE datagrams handed to the IKE daemon.
    # TYPE espd_ike_punted_total counter
    espd_ike_punted_total 103
    # HELP espd_ike_punt_dropped_total IKE datagrams dropped because the queue to the IKE daemon was full (limits.ike_queue_bytes).
    # TYPE espd_ike_punt_dropped_total counter
    espd_ike_punt_dropped_total 104
    # HELP espd_ike_rate_limited_total IKE datagrams dropped over limits.ike_per_second (all sources).
    # TYPE espd_ike_rate_limited_total counter
    espd_ike_rate_limited_total 105
    # HELP espd_ike_source_limited_total IKE datagrams dropped over limits.ike_per_source_per_second (their source address's budget).
    # TYPE espd_ike_source_limited_total counter
    espd_ike_source_limited_total 106
    # HELP espd_ike_replies_total IKE datagrams sent for the IKE daemon.
    # TYPE espd_ike_replies_total counter
    espd_ike_replies_total 107
    # HELP espd_batches_total Batches handled by the packet loop.
    # TYPE espd_batches_total counter
    espd_batches_total 108
    # HELP espd_batched_packets_total Packets in those batches (mean batch size = batched_packets / batches).
    # TYPE espd_batched_packets_total counter
    espd_batched_packets_total 109
    # HELP espd_tun_gso_packets_total GSO packets (TCP/UDP up to 64 KB) read from the TUN.
    # TYPE espd_tun_gso_packets_total counter
    espd_tun_gso_packets_total 110
    # HELP espd_tun_gso_segments_total Segments cut from them, each sealed into its own ESP packet.
    # TYPE espd_tun_gso_segments_total counter
    espd_tun_gso_segments_total 111
    # HELP espd_udp_gso_sends_total sendmsg calls that carried several ESP datagrams (UDP GSO).
    # TYPE espd_udp_gso_sends_total counter
    espd_udp_gso_sends_total 112
    # HELP espd_offload_dropped_total Segments dropped for want of a free buffer.
    # TYPE espd_offload_dropped_total counter
    espd_offload_dropped_total 113
    # HELP espd_tun_gro_packets_total TUN writes that carried several decrypted TCP segments as one GSO packet.
    # TYPE espd_tun_gro_packets_total counter
    espd_tun_gro_packets_total 114
    # HELP espd_tun_gro_segments_total The segments those writes carried.
    # TYPE espd_tun_gro_segments_total counter
    espd_tun_gro_segments_total 115
    # HELP espd_udp_gro_receives_total Receives that carried several coalesced ESP datagrams (UDP GRO).
    # TYPE espd_udp_gro_receives_total counter
    espd_udp_gro_receives_total 116
    # HELP espd_udp_gro_datagrams_total The datagrams those receives carried.
    # TYPE espd_udp_gro_datagrams_total counter
    espd_udp_gro_datagrams_total 117
    # HELP espd_udp_gso_refused 1 once the kernel refused a UDP GSO send (its datagrams went again one by one; GSO is then off for that size and larger).
    # TYPE espd_udp_gso_refused gauge
    espd_udp_gso_refused 1
    # HELP espd_handoff_packets_total Packets a worker handed to the worker that owns their tunnel (--workers N).
    # TYPE espd_handoff_packets_total counter
    espd_handoff_packets_total 119
    # HELP espd_handoff_dropped_total Packets lost on the way to their owner: its ring was full.
    # TYPE espd_handoff_dropped_total counter
    espd_handoff_dropped_total 120
    # HELP espd_ike_listen_received_total Datagrams received on the ike.listen sockets (port 500: all IKE, no marker).
    # TYPE espd_ike_listen_received_total counter
    espd_ike_listen_received_total 121
    # HELP espd_ike_reply_dropped_total IKE daemon replies not sent: no espd socket for their source address and port, or the kernel refused them.
    # TYPE espd_ike_reply_dropped_total counter
    espd_ike_reply_dropped_total 122
    # HELP espd_ike_punt_foreign_total Datagrams on the punt channel from anyone but the IKE daemon's address: dropped.
    # TYPE espd_ike_punt_foreign_total counter
    espd_ike_punt_foreign_total 123
    # HELP espd_loop_stall_seconds_max The longest time a worker spent between two batches on anything but packets (changes, timers, requests), in its own CPU time.
    # TYPE espd_loop_stall_seconds_max gauge
    espd_loop_stall_seconds_max 0.001500000
    # HELP espd_loop_gap_seconds_max The same stretch in wall-clock time: it also counts the time the worker waited for a CPU.
    # TYPE espd_loop_gap_seconds_max gauge
    espd_loop_gap_seconds_max 2.000000123
    # HELP espd_workers Worker loops.
    # TYPE espd_workers gauge
    espd_workers 2
    # HELP espd_worker_packets_total Packets each worker processed.
    # TYPE espd_worker_packets_total counter
    espd_worker_packets_total{worker="0"} 40
    espd_worker_packets_total{worker="1"} 50
    # HELP espd_worker_handed_over_total Packets each worker handed to the owner of their tunnel.
    # TYPE espd_worker_handed_over_total counter
    espd_worker_handed_over_total{worker="0"} 41
    espd_worker_handed_over_total{worker="1"} 51
    # HELP espd_worker_stall_seconds_max The longest time each worker spent between two batches on anything but packets.
    # TYPE espd_worker_stall_seconds_max gauge
    espd_worker_stall_seconds_max{worker="0"} 0.000000042
    espd_worker_stall_seconds_max{worker="1"} 0.000000052
    # HELP espd_tunnels Tunnels configured.
    # TYPE espd_tunnels gauge
    espd_tunnels 2
    # HELP espd_sas Security associations, by direction.
    # TYPE espd_sas gauge
    espd_sas{direction="inbound"} 2
    espd_sas{direction="outbound"} 2
    # HELP espd_sa_expire_events_total SA lifetime events raised (soft: rekey soon; hard: stopped).
    # TYPE espd_sa_expire_events_total counter
    espd_sa_expire_events_total{hard="false"} 6
    espd_sa_expire_events_total{hard="true"} 7
    # HELP espd_control_requests_total Control socket: control requests.
    # TYPE espd_control_requests_total counter
    espd_control_requests_total 11
    # HELP espd_control_errors_total Control socket: control errors.
    # TYPE espd_control_errors_total counter
    espd_control_errors_total 12
    # HELP espd_control_refused_not_owner_total Control socket: control refused not owner.
    # TYPE espd_control_refused_not_owner_total counter
    espd_control_refused_not_owner_total 13
    # HELP espd_control_refused_busy_total Control socket: control refused busy.
    # TYPE espd_control_refused_busy_total counter
    espd_control_refused_busy_total 14
    # HELP espd_control_refused_limit_total Control socket: control refused limit.
    # TYPE espd_control_refused_limit_total counter
    espd_control_refused_limit_total 15
    # HELP espd_metrics_scrapes_total Control socket: metrics scrapes.
    # TYPE espd_metrics_scrapes_total counter
    espd_metrics_scrapes_total 16
    # HELP espd_events_sent_total Control socket: events sent.
    # TYPE espd_events_sent_total counter
    espd_events_sent_total 17
    # HELP espd_tunnel_packets_total Packets through each tunnel (in: decapsulated, out: encapsulated).
    # TYPE espd_tunnel_packets_total counter
    espd_tunnel_packets_total{tunnel="client1",direction="in"} 60
    espd_tunnel_packets_total{tunnel="client1",direction="out"} 62
    espd_tunnel_packets_total{tunnel="client2",direction="in"} 0
    espd_tunnel_packets_total{tunnel="client2",direction="out"} 0
    # HELP espd_tunnel_bytes_total Inner bytes through each tunnel.
    # TYPE espd_tunnel_bytes_total counter
    espd_tunnel_bytes_total{tunnel="client1",direction="in"} 61
    espd_tunnel_bytes_total{tunnel="client1",direction="out"} 63
    espd_tunnel_bytes_total{tunnel="client2",direction="in"} 0
    espd_tunnel_bytes_total{tunnel="client2",direction="out"} 0
    # HELP espd_tunnel_endpoint_changes_total Times each tunnel's peer endpoint moved (NAT rebinding).
    # TYPE espd_tunnel_endpoint_changes_total counter
    espd_tunnel_endpoint_changes_total{tunnel="client1"} 64
    espd_tunnel_endpoint_changes_total{tunnel="client2"} 0
    # HELP espd_tunnel_keepalives_sent_total NAT-keepalives sent by each tunnel.
    # TYPE espd_tunnel_keepalives_sent_total counter
    espd_tunnel_keepalives_sent_total{tunnel="client1"} 66
    espd_tunnel_keepalives_sent_total{tunnel="client2"} 0
    # HELP espd_tunnel_drops_total Packets of each tunnel dropped, by reason (reasons seen only).
    # TYPE espd_tunnel_drops_total counter
    espd_tunnel_drops_total{tunnel="client1",reason="replayed"} 65

    """
  static let stats = """
    {"decapsulated":1,"encapsulated":2,"ike":3,"keepalive":4,"passed":5,"dropped":371,"tun_write_dropped":100,"udp_send_dropped":101,"keepalives_sent":102,"ike_punted":103,"ike_punt_dropped":104,"ike_rate_limited":105,"ike_source_limited":106,"ike_replies":107,"batches":108,"batched_packets":109,"tun_gso_packets":110,"tun_gso_segments":111,"udp_gso_sends":112,"offload_dropped":113,"tun_gro_packets":114,"tun_gro_segments":115,"udp_gro_receives":116,"udp_gro_datagrams":117,"udp_gso_refused":1,"handoff_packets":119,"handoff_dropped":120,"ike_listen_received":121,"ike_reply_dropped":122,"ike_punt_foreign":123,"control_requests":11,"control_errors":12,"control_refused_not_owner":13,"control_refused_busy":14,"control_refused_limit":15,"metrics_scrapes":16,"events_sent":17,"tunnel_count":2,"inbound_sa_count":2,"sa_soft_expired":6,"sa_hard_expired":7,"loop_stall_max_ns":1500000,"loop_gap_max_ns":2000000123,"workers":[{"packets":40,"handed_over":41,"stall_max_ns":42,"gap_max_ns":43},{"packets":50,"handed_over":51,"stall_max_ns":52,"gap_max_ns":53}],"drops":{"unknown_spi":20,"auth_failed":21,"replayed":22,"outside_window":23,"malformed":24,"bad_padding":25,"selector_mismatch":26,"no_route":27,"sequence_exhausted":28,"too_big":29,"crypto_failure":30,"no_peer":31,"dummy":32,"expired":33},"tunnels":[{"name":"client1","peer":"192.0.2.7:4500","packets_in":60,"bytes_in":61,"packets_out":62,"bytes_out":63,"endpoint_changes":64,"keepalives_sent":66,"drops":{"unknown_spi":0,"auth_failed":0,"replayed":65,"outside_window":0,"malformed":0,"bad_padding":0,"selector_mismatch":0,"no_route":0,"sequence_exhausted":0,"too_big":0,"crypto_failure":0,"no_peer":0,"dummy":0,"expired":0}},{"name":"client2","peer":null,"packets_in":0,"bytes_in":0,"packets_out":0,"bytes_out":0,"endpoint_changes":0,"keepalives_sent":0,"drops":{"unknown_spi":0,"auth_failed":0,"replayed":0,"outside_window":0,"malformed":0,"bad_padding":0,"selector_mismatch":0,"no_route":0,"sequence_exhausted":0,"too_big":0,"crypto_failure":0,"no_peer":0,"dummy":0,"expired":0}}]}
    """
  static let list = """
    {"ok":true,"tunnels":[{"name":"client1","mode":"tunnel","peer":"192.0.2.7:4500","remote_ts":["203.0.113.11/32"],"inbound":[{"spi":"0x00001001","alg":"aes128gcm16","esn":false,"replay_seq":0,"packets":0,"bytes":0,"state":"active"}],"outbound":{"spi":"0x00002001","alg":"aes128gcm16","esn":false,"seq":0,"packets":0,"bytes":0,"state":"active"},"counters":{"packets_in":60,"bytes_in":61,"packets_out":62,"bytes_out":63,"endpoint_changes":64,"keepalives_sent":66,"drops":{"unknown_spi":0,"auth_failed":0,"replayed":65,"outside_window":0,"malformed":0,"bad_padding":0,"selector_mismatch":0,"no_route":0,"sequence_exhausted":0,"too_big":0,"crypto_failure":0,"no_peer":0,"dummy":0,"expired":0}}},{"name":"client2","mode":"transport","peer":null,"alias":"100.64.0.9","inbound":[{"spi":"0x00001002","alg":"aes128gcm16","esn":false,"replay_seq":0,"packets":0,"bytes":0,"state":"active"}],"outbound":{"spi":"0x00002002","alg":"aes128gcm16","esn":false,"seq":0,"packets":0,"bytes":0,"state":"soft_expired"},"counters":{"packets_in":0,"bytes_in":0,"packets_out":0,"bytes_out":0,"endpoint_changes":0,"keepalives_sent":0,"drops":{"unknown_spi":0,"auth_failed":0,"replayed":0,"outside_window":0,"malformed":0,"bad_padding":0,"selector_mismatch":0,"no_route":0,"sequence_exhausted":0,"too_big":0,"crypto_failure":0,"no_peer":0,"dummy":0,"expired":0}}}]}
    """
}
