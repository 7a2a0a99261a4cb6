# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_traftctl_global_optspecs
    string join \n v/verbose endpoints= timeout= o/output= cacert= cert= key= insecure-skip-tls-verify h/help V/version
end

function __fish_traftctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_traftctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_traftctl_using_subcommand
    set -l cmd (__fish_traftctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c traftctl -n "__fish_traftctl_needs_command" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_needs_command" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_needs_command" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_needs_command" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_needs_command" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_needs_command" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_needs_command" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_needs_command" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_needs_command" -s V -l version -d 'Print version'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "local-cluster" -d 'Start a whole cluster of N members in this process, on 127.0.0.1'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "node" -d 'Run one member of a multi-machine cluster'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "propose" -d 'Propose a command (`set`, `incr`, `del`) to the leader and wait until it commits'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "get" -d 'Read a key'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "status" -d 'Show the cluster\'s members and their logs, or one replica\'s full status'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "log" -d 'List a replica\'s log records'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "config" -d 'Show or change the cluster configuration: members and quorums'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "snapshot" -d 'Back up the cluster\'s state, inspect a backup, or restore one into a new data directory'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "check" -d 'Check the cluster\'s consistency (`check hash`: equal states at equal applied sets)'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "leader" -d 'Move leadership to another member (`leader transfer [--to ID]`)'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "watch" -d 'Stream the cluster\'s events (elections, commits, applies) until Ctrl-C'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "bench" -d 'Load the cluster with concurrent clients and report throughput and latency'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "chaos" -d 'Change the faults of a running `local-cluster --chaos`: `set SPEC...`, `clear`, `show`'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "local" -d 'Crash, freeze, thaw or restart a member of a running `local-cluster`: `kill|pause|resume|restart ID`, `list`'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "gen-docs" -d 'Write the completion scripts and man pages into a directory (for packaging and for regenerating `completions/` and `man/`)'
complete -c traftctl -n "__fish_traftctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l base-port -d 'Member i listens on 127.0.0.1:(base-port + i - 1)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l data-dir -d 'Parent of the members\' data directories; running again on the same directory recovers the cluster with its data' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l metrics-base-port -d 'Member i serves /metrics, /livez and /readyz on 127.0.0.1:(metrics-base-port + i - 1)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l election-timeout-secs -d 'Give up if no leader is elected within this many seconds' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l chaos -d 'Put every member-to-member connection through a fault proxy with these faults (repeatable, one rule each; `none`: the proxy without faults, to add some later with `traftctl chaos set`)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l chaos-seed -d 'Seed of the proxy\'s random draws (jitter, drop), to repeat a run (default: from the clock; the banner shows it)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l snapshot-every -d 'Snapshot the state and compact the log after this many applied records (0: never, and the log grows without bound)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l compact-retain -d 'Applied records kept behind a snapshot, so a member that trails by less catches up from the log instead of a whole snapshot' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l commit-order -d '`any`: traft\'s out-of-order commit and apply (each record commits on its own quorum and applies once its dependencies have). `prefix`: the leader commits strictly in seq order and every member applies in seq order, as Raft does. `prefix` is a diagnostic, not a production mode: it exists to measure what out-of-order commit buys, with the same binary under the same faults' -r -f -a "any\t''
prefix\t''"
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l peer-connections -d 'Connections a leader replicates on to each follower, forwards taking them in turn: a connection that breaks loses only its own forwards, and the records on the others commit meanwhile' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l ephemeral -d 'Keep the data in a temporary directory that is removed on exit'
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -l tls -d 'Mutual TLS on every listener, with a throwaway CA and certificates made in DATA_DIR/tls (and reused from there on the next run)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local-cluster" -s h -l help -d 'Print help'
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l config -d 'Read flags from this TOML file (keys are the flags\' names); flags given here win' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l id -d 'This member\'s id (a positive integer, unique in the cluster). Required, here or in --config' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l listen -d 'Address to listen on for peers and clients (one port for both; with TLS it presents the --cert-file set when given, else the --peer-cert-file set)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l listen-client -d 'Address for clients (TRaftAdmin, and TRaft for Propose), instead of --listen' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l listen-peer -d 'Address for peers (TRaft Vote and LogForward, TRaftSnapshot), instead of --listen; the address the other members list for this one' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l listen-metrics -d 'Serve /metrics (Prometheus text format), /livez and /readyz over plain HTTP here' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l advertise-client -l advertise-client-urls -d 'Where clients reach this member, when it listens on a wildcard (0.0.0.0) or behind NAT; `status` reports it. Default: the client listen address, unless that is a wildcard' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l advertise-peer -l initial-advertise-peer-urls -d 'Where the other members reach this one: what `--join` tells the operator to add and what --force-new-cluster records; must match this member\'s --peers entry. Default: the peer listen address, unless that is a wildcard (then it is required where it is used)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l peers -d 'Every initial member as ID=HOST:PORT (or ID=https://HOST:PORT), this one included, comma separated: the addresses members dial each other at. Required unless --join or --force-new-cluster' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l join -d 'Start as a new member of the running cluster that ADDR belongs to; it receives the log once the cluster adds it with `traftctl config add-member`' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l data-dir -d 'Where this member keeps its log and state. Required, here or in --config' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l initial-cluster-token -d 'Seeds the cluster id, with the --peers list, at the first start (like etcd\'s): give every cluster its own, so members of two clusters can never vote or forward into each other\'s. Ignored with --join (the member adopts the cluster\'s id) and after the first start (the data directory keeps it)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l heartbeat-interval -d 'How often an idle leader renews its lease, in milliseconds (etcd\'s name)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l election-timeout -d 'The lease, in milliseconds: how long a follower stays with a leader it heard from before it may elect another (at least 5 x --heartbeat-interval, at most 50000; etcd\'s name)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l log-format -d 'How log lines look on stderr: `text` (coloured only on a terminal) or `json`, one object per line for log collectors' -r -f -a "text\t'Lines for people; coloured only when stderr is a terminal'
json\t'One JSON object per line, for log collectors'"
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l snapshot-every -d 'Snapshot the state and compact the log after this many applied records (0: never, and the log grows without bound)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l compact-retain -d 'Applied records kept behind a snapshot, so a member that trails by less catches up from the log instead of a whole snapshot' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l commit-order -d '`any`: traft\'s out-of-order commit and apply (each record commits on its own quorum and applies once its dependencies have). `prefix`: the leader commits strictly in seq order and every member applies in seq order, as Raft does. `prefix` is a diagnostic, not a production mode: it exists to measure what out-of-order commit buys, with the same binary under the same faults' -r -f -a "any\t''
prefix\t''"
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l peer-connections -d 'Connections a leader replicates on to each follower, forwards taking them in turn: a connection that breaks loses only its own forwards, and the records on the others commit meanwhile' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l dial-via -d 'Dial member ID at HOST:PORT instead of its configured address (for tests; repeatable)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l cert-file -d 'Certificate (PEM) the client listener presents' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l key-file -d 'Private key (PEM) of --cert-file' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l trusted-ca-file -d 'CA (PEM) that client certificates must be signed by' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l peer-cert-file -d 'Certificate (PEM) the peer listener presents, and this member presents when it dials peers' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l peer-key-file -d 'Private key (PEM) of --peer-cert-file' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l peer-trusted-ca-file -d 'CA (PEM) that peers\' certificates must be signed by, both the ones peers present when they dial and the ones they serve' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l client-cert-auth -d 'Require a client certificate signed by --trusted-ca-file'
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l peer-client-cert-auth -d 'Accept peer RPCs only from certificates --peer-trusted-ca-file signed'
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l force-new-cluster -d 'Disaster recovery: start a one-member cluster from this member\'s data directory, when a quorum of the old cluster is lost for good. Writes only the lost members held are gone. Needs --confirm-data-loss. The old directory is kept next to the new one'
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -l confirm-data-loss -d 'Confirms --force-new-cluster'
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand node" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand propose" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -l consistency -d 'Linearizable reads go to the leader (following redirects); serializable reads are answered by the first endpoint that responds' -r -f -a "linearizable\t'Served by the leader under its lease: sees every write committed before the read began'
serializable\t'Served by whichever replica answers, from its applied state: fast, possibly stale'"
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -l addr -d 'Show this replica\'s full status (HOST:PORT) instead of the cluster table' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l addr -d 'Read this replica\'s log (HOST:PORT) instead of the leader\'s' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l from -d 'The first seq to list' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l limit -d 'At most this many records (the server caps a page at 10000)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand log" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -f -a "show" -d 'Members (id, address, quorum-bitmap position) and quorums as member-id sets'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -f -a "quorums" -d 'Each quorum by member, and the smallest sets of members whose loss stops the cluster'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -f -a "add-member" -d 'Add a member (already started with `traftctl node --join`); quorums become majorities'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -f -a "remove-member" -d 'Remove a member; quorums become majorities of the remaining members'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -f -a "set-quorums" -d 'Replace the quorums with a custom quorum system over the current members'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -f -a "abort" -d 'Cancel the membership change in flight, if its joint configuration has not committed'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and not __fish_seen_subcommand_from show quorums add-member remove-member set-quorums abort help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from quorums" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l change-timeout -d 'How long to wait for the change to finish (exit 4 after that; the change may still complete). --timeout bounds every other request' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l dry-run -d 'Print the joint and final configurations the change would go through, and change nothing'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l force -d 'Skip the leader\'s check that the members it heard from within a lease hold a quorum of the current and the new configuration. A forced change can leave the cluster unable to commit'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from add-member" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l change-timeout -d 'How long to wait for the change to finish (exit 4 after that; the change may still complete). --timeout bounds every other request' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l dry-run -d 'Print the joint and final configurations the change would go through, and change nothing'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l force -d 'Skip the leader\'s check that the members it heard from within a lease hold a quorum of the current and the new configuration. A forced change can leave the cluster unable to commit'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from remove-member" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l change-timeout -d 'How long to wait for the change to finish (exit 4 after that; the change may still complete). --timeout bounds every other request' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l dry-run -d 'Print the joint and final configurations the change would go through, and change nothing'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l force -d 'Skip the leader\'s check that the members it heard from within a lease hold a quorum of the current and the new configuration. A forced change can leave the cluster unable to commit'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from set-quorums" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from abort" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Members (id, address, quorum-bitmap position) and quorums as member-id sets'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "quorums" -d 'Each quorum by member, and the smallest sets of members whose loss stops the cluster'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "add-member" -d 'Add a member (already started with `traftctl node --join`); quorums become majorities'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "remove-member" -d 'Remove a member; quorums become majorities of the remaining members'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "set-quorums" -d 'Replace the quorums with a custom quorum system over the current members'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "abort" -d 'Cancel the membership change in flight, if its joint configuration has not committed'
complete -c traftctl -n "__fish_traftctl_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -f -a "save" -d 'Save the leader\'s current snapshot (state, applied set, configuration, checksum) to FILE'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -f -a "status" -d 'Check a backup file and print what it holds'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -f -a "restore" -d 'Write a data directory from a backup, for a new cluster that starts with exactly that state'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and not __fish_seen_subcommand_from save status restore help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from save" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l data-dir -d 'The data directory to create' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l id -d 'The id this member will have in the new cluster' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l peers -d 'The new cluster\'s members as ID=HOST:PORT (as `traftctl node --peers`)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l initial-cluster-token -d 'Give the restored cluster a new cluster id, made from TOKEN and --peers as `traftctl node` makes it (use the same TOKEN for every member). Without it, the cluster keeps the id the backup was saved from' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from restore" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "save" -d 'Save the leader\'s current snapshot (state, applied set, configuration, checksum) to FILE'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "status" -d 'Check a backup file and print what it holds'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "restore" -d 'Write a data directory from a backup, for a new cluster that starts with exactly that state'
complete -c traftctl -n "__fish_traftctl_using_subcommand snapshot; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -f -a "hash" -d 'Compare a digest of every member\'s state at its applied set'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and not __fish_seen_subcommand_from hash help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from hash" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from help" -f -a "hash" -d 'Compare a digest of every member\'s state at its applied set'
complete -c traftctl -n "__fish_traftctl_using_subcommand check; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -f -a "transfer" -d 'Hand leadership to another voting member'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and not __fish_seen_subcommand_from transfer help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -l to -d 'The member to hand leadership to (default: the most caught up)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from transfer" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from help" -f -a "transfer" -d 'Hand leadership to another voting member'
complete -c traftctl -n "__fish_traftctl_using_subcommand leader; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l addr -d 'Watch only this member (HOST:PORT) instead of every endpoint' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l kinds -d 'Print only these kinds of event (comma separated), e.g. --kinds vote_win,leader_change,config_change' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l prefix -d 'KEY is a prefix: print the events of every key that starts with it (as etcdctl\'s --prefix)'
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l clients -d 'Concurrent clients' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l conns -d 'Connections the clients share (HTTP/2 carries many requests at once on each)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l ops -d 'Total requests across all clients [default: 1000, unless --duration is given]' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l duration -d 'Run for this long instead of a number of requests (e.g. 10s)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l keys -d 'Spread requests over this many keys (`bench-0` ...)' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l value-size -d 'Bytes in each written value' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l read-ratio -d 'The share of requests that are reads, from 0 to 1' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -f -a "set" -d 'Replace the faults with these rules (one SPEC each; `none`: no faults)'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -f -a "clear" -d 'Remove every fault'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -f -a "show" -d 'Show the rules in force and every link through the proxy'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and not __fish_seen_subcommand_from set clear show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from clear" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from help" -f -a "set" -d 'Replace the faults with these rules (one SPEC each; `none`: no faults)'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from help" -f -a "clear" -d 'Remove every fault'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the rules in force and every link through the proxy'
complete -c traftctl -n "__fish_traftctl_using_subcommand chaos; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -f -a "kill" -d 'Crash member ID: it stops at once, with no hand-over and its memory dropped, as a SIGKILL would leave it. Its data directory stays'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -f -a "pause" -d 'Freeze member ID, as SIGSTOP would: it stops processing and answering (requests to it wait and time out) while its sockets stay open'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -f -a "resume" -d 'Thaw a paused member: what queued meanwhile is processed'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -f -a "restart" -d 'Start member ID again from its data directory, on the same port (crashing it first if it runs), as a restart after a crash would'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -f -a "list" -d 'List the members and their states: running, paused or killed'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and not __fish_seen_subcommand_from kill pause resume restart list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from kill" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from pause" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from resume" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from restart" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "kill" -d 'Crash member ID: it stops at once, with no hand-over and its memory dropped, as a SIGKILL would leave it. Its data directory stays'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "pause" -d 'Freeze member ID, as SIGSTOP would: it stops processing and answering (requests to it wait and time out) while its sockets stay open'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "resume" -d 'Thaw a paused member: what queued meanwhile is processed'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "restart" -d 'Start member ID again from its data directory, on the same port (crashing it first if it runs), as a restart after a crash would'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the members and their states: running, paused or killed'
complete -c traftctl -n "__fish_traftctl_using_subcommand local; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -l endpoints -d 'Cluster members to talk to, as HOST:PORT, comma separated' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -l timeout -d 'Give up after this long (e.g. 500ms, 5s, 2m): exit code 4' -r
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -s o -l output -d 'Output format: tables for people, JSON for scripts, plain for `cut` and `awk`' -r -f -a "table\t'Aligned tables and sentences'
json\t'One JSON document (JSON lines for `watch`)'
plain\t'Tab-separated fields, no headers or borders'"
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -l cacert -d 'CA certificate (PEM) to verify the members\' certificates with; endpoints without a scheme then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -l cert -d 'Client certificate (PEM) to present, for members that require one; it needs --cacert too, and endpoints then use TLS' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -l key -d 'Private key (PEM) of --cert' -r -F
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -l insecure-skip-tls-verify -d 'Use TLS but accept any member certificate: encrypted, not authenticated'
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -s v -l verbose -d 'Log verbosity on stderr: -v info, -vv debug, -vvv trace (default: warnings only)'
complete -c traftctl -n "__fish_traftctl_using_subcommand gen-docs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "local-cluster" -d 'Start a whole cluster of N members in this process, on 127.0.0.1'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "node" -d 'Run one member of a multi-machine cluster'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "propose" -d 'Propose a command (`set`, `incr`, `del`) to the leader and wait until it commits'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "get" -d 'Read a key'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "status" -d 'Show the cluster\'s members and their logs, or one replica\'s full status'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "log" -d 'List a replica\'s log records'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "config" -d 'Show or change the cluster configuration: members and quorums'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "snapshot" -d 'Back up the cluster\'s state, inspect a backup, or restore one into a new data directory'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "check" -d 'Check the cluster\'s consistency (`check hash`: equal states at equal applied sets)'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "leader" -d 'Move leadership to another member (`leader transfer [--to ID]`)'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "watch" -d 'Stream the cluster\'s events (elections, commits, applies) until Ctrl-C'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "bench" -d 'Load the cluster with concurrent clients and report throughput and latency'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "chaos" -d 'Change the faults of a running `local-cluster --chaos`: `set SPEC...`, `clear`, `show`'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "local" -d 'Crash, freeze, thaw or restart a member of a running `local-cluster`: `kill|pause|resume|restart ID`, `list`'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "completions" -d 'Print a shell completion script to stdout'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "gen-docs" -d 'Write the completion scripts and man pages into a directory (for packaging and for regenerating `completions/` and `man/`)'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and not __fish_seen_subcommand_from local-cluster node propose get status log config snapshot check leader watch bench chaos local completions gen-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Members (id, address, quorum-bitmap position) and quorums as member-id sets'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "quorums" -d 'Each quorum by member, and the smallest sets of members whose loss stops the cluster'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "add-member" -d 'Add a member (already started with `traftctl node --join`); quorums become majorities'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "remove-member" -d 'Remove a member; quorums become majorities of the remaining members'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "set-quorums" -d 'Replace the quorums with a custom quorum system over the current members'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "abort" -d 'Cancel the membership change in flight, if its joint configuration has not committed'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "save" -d 'Save the leader\'s current snapshot (state, applied set, configuration, checksum) to FILE'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "status" -d 'Check a backup file and print what it holds'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from snapshot" -f -a "restore" -d 'Write a data directory from a backup, for a new cluster that starts with exactly that state'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from check" -f -a "hash" -d 'Compare a digest of every member\'s state at its applied set'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from leader" -f -a "transfer" -d 'Hand leadership to another voting member'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from chaos" -f -a "set" -d 'Replace the faults with these rules (one SPEC each; `none`: no faults)'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from chaos" -f -a "clear" -d 'Remove every fault'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from chaos" -f -a "show" -d 'Show the rules in force and every link through the proxy'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "kill" -d 'Crash member ID: it stops at once, with no hand-over and its memory dropped, as a SIGKILL would leave it. Its data directory stays'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "pause" -d 'Freeze member ID, as SIGSTOP would: it stops processing and answering (requests to it wait and time out) while its sockets stay open'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "resume" -d 'Thaw a paused member: what queued meanwhile is processed'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "restart" -d 'Start member ID again from its data directory, on the same port (crashing it first if it runs), as a restart after a crash would'
complete -c traftctl -n "__fish_traftctl_using_subcommand help; and __fish_seen_subcommand_from local" -f -a "list" -d 'List the members and their states: running, paused or killed'
