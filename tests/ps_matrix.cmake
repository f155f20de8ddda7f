# SPDX-License-Identifier: MIT
#
# The parameter-server job matrix: every whole-job test (case x model x
# transport) is one row of RDPS_PS_MATRIX, and rdps_ps_matrix() below makes
# the ctest entries from it. Included by tests/CMakeLists.txt once
# rdps-launch, rdps-server and ps_worker are built. A case that runs on shm
# runs on tcp too, unless its row says why not.
#
# A row is "case | model | transports | timeout | labels | command":
#   case        the test is ps_<case>_<transport>; ps_<case> when one test
#               uses several transports (shm+tcp) or runs in the rxe VMs.
#   model       job rows: rdps-launch --model (bsp, ssp, asp, absp), with
#               the slack after a colon (ssp:2 is --model ssp --slack 2);
#               sh rows: the models the script runs itself (comma list).
#   transports  "shm tcp": one test per transport built in; "shm+tcp": one
#               test, built when both are; "rxe": one test over verbs on
#               soft-RoCE in the rxe-vm VMs (see tests/CMakeLists.txt: plain
#               gcc builds with verbs, shm and tcp; run alone; skipped with a
#               reason, exit 77, when the VMs cannot run).
#   timeout     ctest's TIMEOUT in seconds; a job row's rdps-launch gets
#               --timeout 5 s less, so the launcher names a hung job first.
#   labels      extra ctest labels besides "ps", comma separated ("long":
#               ctest -LE long leaves the row out).
#   command     "job LAUNCH-OPTIONS -- ARGS": rdps-launch --transport T
#               --model M LAUNCH-OPTIONS -- ps_worker ARGS (the modes are
#               described at the top of tests/ps_worker.c); rank 0 checks
#               the job, every worker's exit status becomes the launcher's.
#               "sh SCRIPT ARGS": bash tests/SCRIPT ARGS, where @LAUNCH@,
#               @SERVER@, @WORKER@, @TP@, @RXE_VM@ and @BUILD@ stand for
#               rdps-launch, rdps-server, ps_worker, the transport, the
#               rxe-vm script and the build tree (@EMB@: emb_worker).
#               "emb LAUNCH-OPTIONS -- ARGS": a job row whose workers are
#               tests/emb_worker.c (embedding tables).
#               Any of them may start with "env NAME=VALUE": the test's
#               environment (the shards and workers inherit it).
#
# Each job is a few seconds at most on an idle box; the 60 s limits leave
# room for sanitizers and a loaded 2-core machine. ps_sum_long_shm (10^5
# pushes, 8 workers) is labelled long.
set(RDPS_PS_MATRIX
  # The clock tree (fan-in 3: groups of 3, 3 and 2 over 2 or 4 shards):
  # exactly-once sums, the staleness bound under bsp and ssp, A-BSP cuts,
  # and the counting words: the root takes ceil(W/G) fetch-adds a clock,
  # no worker more than 2 a tick (fan-in 1: the flat counter, W a clock).
  "tree_sum        | bsp   | shm tcp | 60  |      | env RDPS_CLOCK_FANIN=3 job -s 2 -w 8 -- sum 400 5"
  "tree_bound      | ssp:1 | shm tcp | 60  |      | env RDPS_CLOCK_FANIN=3 job -s 4 -w 8 -- ssp 40 7"
  "tree_bound_bsp  | bsp   | shm tcp | 60  |      | env RDPS_CLOCK_FANIN=3 job -s 4 -w 8 -- ssp 30 8"
  "tree_cut        | absp  | shm tcp | 60  |      | env RDPS_CLOCK_FANIN=3 job -s 2 -w 8 -- cut 20"
  "tree_count      | bsp   | shm tcp | 60  |      | env RDPS_CLOCK_FANIN=3 job -s 4 -w 8 -- tree 30 3 3"
  "tree_count_ssp  | ssp:1 | shm     | 60  |      | env RDPS_CLOCK_FANIN=2 job -s 2 -w 8 -- tree 30 3 2"
  "tree_count_flat | bsp   | shm     | 60  |      | env RDPS_CLOCK_FANIN=1 job -s 2 -w 8 -- tree 30 3 1"
  # Exactly-once sums of random dense and sparse pushes.
  "sum             | bsp   | shm     | 60  |      | job -s 2 -w 8 -- sum 2000 1"
  "sum             | ssp:2 | tcp     | 60  |      | job -s 3 -w 4 -- sum 2000 2"
  "sum_long        | bsp   | shm     | 60  | long | job -s 2 -w 8 -- sum 12500 3"
  # The staleness bound, in the values pulled and in rdps_clock (under
  # bsp: slack 0).
  "ssp_bound       | ssp:2 | shm tcp | 60  |      | job -s 2 -w 3 -- ssp 60 7"
  "ssp_bound_bsp   | bsp   | shm tcp | 60  |      | job -s 2 -w 3 -- ssp 40 8"
  # Under ASP nobody waits for a stalled worker. Over tcp every clock's
  # own fetch-add is a round trip (about 0.15 ms) that rdps_clock counts as
  # waiting: 50 clocks keep that far below the 50 ms the case allows.
  "asp_nonblocking | asp   | shm     | 60  |      | job -s 2 -w 3 -- asp 200"
  "asp_nonblocking | asp   | tcp     | 60  |      | job -s 2 -w 3 -- asp 50"
  # Bad table opens and ranges refused; the job goes on.
  "badinput        | bsp   | shm tcp | 60  |      | job -s 2 -w 2 -- badinput"
  # A-BSP cuts: one winner per round, none carried over.
  "absp_cut        | absp  | shm     | 60  |      | job -s 2 -w 3 -- cut 50"
  "absp_cut        | absp  | tcp     | 60  |      | job -s 2 -w 3 -- cut 20"
  # Pushes from rdps_buf_alloc() memory (payload and header in two writes).
  "zcopy           | asp   | shm     | 60  |      | job -s 3 -w 3 -- zcopy 5"
  "zcopy           | bsp   | tcp     | 60  |      | job -s 3 -w 3 -- zcopy 3"
  # A stopped shard leaves tcp reads unanswered (shm and verbs reads need
  # no shard CPU; ps_fail's stop case covers them): named within a few
  # heartbeats, and the context then refuses at once.
  "stopshard       | ssp   | tcp     | 60  |      | job -s 2 -w 1 -- stopshard"
  # kill -9 of a shard mid-job, resume from checkpoints: identical bytes.
  "ckpt_resume     | bsp   | shm tcp | 120 |      | sh ps_ckpt.sh @LAUNCH@ @SERVER@ @WORKER@ @TP@"
  # --checkpoint-dir made if missing, refused at start if unusable; an
  # unwritable checkpoint mid-job fails the job naming the file.
  "ckpt_dir        | bsp   | shm tcp | 120 |      | sh ckpt_dir.sh @LAUNCH@ @SERVER@ @WORKER@ @TP@"
  # rdps-train killed (a shard, kill -9) and resumed: on from the shards'
  # clock to the same final clock and parameters; a finished job resumed
  # does no clock.
  "train_resume    | bsp   | shm tcp | 120 |      | sh train_resume.sh @LAUNCH@ @TP@"
  # kill -9 of a worker, then of a shard, and SIGSTOP of each: named by
  # the others, no hang.
  "fail            | bsp   | shm tcp | 240 |      | sh ps_fail.sh @LAUNCH@ @WORKER@ @TP@"
  # A worker killed or stopped mid-job: SSP and ASP go on without it
  # (--on-worker-loss continue), exact counts; without it, named.
  "lose            | ssp,asp,bsp | shm tcp | 240 | | sh ps_lose.sh @LAUNCH@ @WORKER@ @TP@"
  # BSP is deterministic: bit-identical parameters across runs and over
  # shm and tcp, for deltas (SGD), puts and keep-if-better blocks.
  "bsp_identical   | bsp   | shm+tcp | 60  |      | sh ps_bsp.sh @LAUNCH@ @WORKER@"
  # Embedding tables: exactly-once apply of 8 workers' overlapping
  # power-law keys (duplicates summed), round trips counted; a reader
  # racing the shard's rewrites never gets a torn row; a full table
  # refuses whole, naming itself and its capacity; under BSP a new key
  # whose two buckets are full loses its update and the table refuses
  # pushes from then on (documented in ps_proto.h); BSP leaves the same
  # index and rows on every run, over shm and tcp, and after a shard killed
  # mid-run and resumed from its checkpoint.
  "emb_once        | bsp   | shm tcp | 60  |      | emb -s 2 -w 8 -- once 40 1"
  "emb_once_asp    | asp   | shm tcp | 60  |      | emb -s 3 -w 8 -- once 40 2"
  "emb_once_ssp    | ssp:1 | shm tcp | 60  |      | emb -s 2 -w 4 -- once 40 3"
  "emb_torn        | asp   | shm tcp | 60  |      | emb -s 1 -w 2 -- torn 20000"
  "emb_full        | bsp   | shm tcp | 60  |      | emb -s 1 -w 1 -- full"
  "emb_full_asp    | asp   | shm tcp | 60  |      | emb -s 1 -w 1 -- full"
  "emb_cache       | asp   | shm tcp | 60  |      | emb -s 1 -w 1 -- cache"
  "emb_cache_bsp   | bsp   | shm tcp | 60  |      | emb -s 1 -w 1 -- cache"
  "emb_overflow    | bsp   | shm tcp | 60  |      | sh ps_emb_overflow.sh @LAUNCH@ @EMB@ @TP@"
  "emb_bsp_identical | bsp | shm+tcp | 90  |      | sh ps_emb_bsp.sh @LAUNCH@ @EMB@"
  "emb_ckpt_resume | bsp   | shm tcp | 120 |      | sh ps_emb_ckpt.sh @LAUNCH@ @EMB@ @TP@"
  # The same over verbs on soft-RoCE in one VM (exactly-once, torn reads,
  # BSP index and rows identical to shm's and tcp's on the host).
  "emb_verbs_rxe   | bsp,asp | rxe  | 420 | verbs,rxe | sh ps_emb_rxe.sh @RXE_VM@ @LAUNCH@ @EMB@ @BUILD@"
  # A job that ends normally prints no warning or error: ps_worker sum and
  # ssp, rdps-psbench round and pull (busy and adaptive polling); any
  # warn/error line in the whole stderr fails it (over verbs:
  # ps_rxe_guest.sh greps its clean jobs the same way).
  "quiet           | bsp,ssp | shm tcp | 60 |     | sh ps_quiet.sh @LAUNCH@ @WORKER@ @BUILD@/tools/rdps-psbench @TP@"
  # rdps-psbench -W: a call in a loop that also works reports the call
  # alone (the work's own median taken off); -W where it does not apply
  # is one error line.
  "psbench_work    | asp   | shm     | 60 |     | sh ps_psbench_work.sh @LAUNCH@ @BUILD@/tools/rdps-psbench @TP@"
  # Over verbs on soft-RoCE, one VM boot running several jobs
  # (tests/ps_rxe_guest.sh through rxe_run.sh --script): ps_worker sum,
  # cut and zcopy, and BSP parameters bit-identical to the same job's over
  # shm and tcp on the host. verbs_rxe: rdps-launch --transport verbs in
  # one VM, which also runs ps_fail.sh and ps_lose.sh over verbs;
  # verbs_rxe2: the shards (rdps-server) in one VM, the workers in the
  # other. About 30 s each on an idle 2-core box.
  "verbs_rxe       | bsp,ssp,asp,absp | rxe | 420 | verbs,rxe | sh ps_rxe.sh 1 @RXE_VM@ @LAUNCH@ @SERVER@ @WORKER@ @BUILD@"
  "verbs_rxe2      | bsp,absp | rxe | 420 | verbs,rxe | sh ps_rxe.sh 2 @RXE_VM@ @LAUNCH@ @SERVER@ @WORKER@ @BUILD@"
)

# rdps_ps_matrix_test(NAME TP MODEL TIMEOUT LABELS COMMAND): one ctest entry
# of one row for transport TP ("shm+tcp" and "rxe" included).
function(rdps_ps_matrix_test NAME TP MODEL TIMEOUT LABELS COMMAND)
  separate_arguments(_cmd UNIX_COMMAND "${COMMAND}")
  list(POP_FRONT _cmd _kind)
  set(_env "")
  if(_kind STREQUAL "env")
    list(POP_FRONT _cmd _env _kind)
  endif()
  set(_worker ps_worker)
  if(_kind STREQUAL "emb")
    set(_worker emb_worker)
    set(_kind job)
  endif()
  if(_kind STREQUAL "job")
    list(FIND _cmd "--" _sep)
    if(_sep LESS 0)
      message(FATAL_ERROR "ps matrix row ${NAME}: job without '--'")
    endif()
    list(SUBLIST _cmd 0 ${_sep} _opts)
    math(EXPR _sep "${_sep} + 1")
    list(SUBLIST _cmd ${_sep} -1 _args)
    string(REPLACE ":" ";" _model "${MODEL}")
    list(GET _model 0 _m)
    set(_opts --model ${_m} ${_opts})
    list(LENGTH _model _n)
    if(_n GREATER 1)
      list(GET _model 1 _slack)
      set(_opts ${_opts} --slack ${_slack})
    endif()
    math(EXPR _launch_timeout "${TIMEOUT} - 5")
    set(_argv $<TARGET_FILE:rdps-launch> --timeout ${_launch_timeout}
              --transport ${TP} ${_opts} -- $<TARGET_FILE:${_worker}> ${_args})
  elseif(_kind STREQUAL "sh")
    list(POP_FRONT _cmd _script)
    set(_argv bash ${CMAKE_CURRENT_SOURCE_DIR}/${_script})
    foreach(_a IN LISTS _cmd)
      string(REPLACE "@LAUNCH@" "$<TARGET_FILE:rdps-launch>" _a "${_a}")
      string(REPLACE "@SERVER@" "$<TARGET_FILE:rdps-server>" _a "${_a}")
      string(REPLACE "@WORKER@" "$<TARGET_FILE:ps_worker>" _a "${_a}")
      string(REPLACE "@EMB@" "$<TARGET_FILE:emb_worker>" _a "${_a}")
      string(REPLACE "@TP@" "${TP}" _a "${_a}")
      string(REPLACE "@RXE_VM@" "${_rxe_vm_arg}" _a "${_a}")
      string(REPLACE "@BUILD@" "${CMAKE_BINARY_DIR}" _a "${_a}")
      list(APPEND _argv "${_a}")
    endforeach()
  else()
    message(FATAL_ERROR "ps matrix row ${NAME}: command '${COMMAND}' is "
            "neither 'job ...' nor 'sh ...'")
  endif()
  add_test(NAME ${NAME} COMMAND ${_argv})
  string(REPLACE "," ";" _labels "ps,${LABELS}")
  list(REMOVE_ITEM _labels "")
  set_tests_properties(${NAME} PROPERTIES TIMEOUT ${TIMEOUT}
                       LABELS "${_labels}")
  if(_env)
    set_tests_properties(${NAME} PROPERTIES ENVIRONMENT "${_env}")
  endif()
  if(TP STREQUAL "rxe")
    set_tests_properties(${NAME} PROPERTIES SKIP_RETURN_CODE 77
                         RUN_SERIAL TRUE RESOURCE_LOCK rxe_vm)
  endif()
endfunction()

# rdps_ps_matrix(): the ctest entries of every row whose transports are
# built (and, for rxe rows, whose build can boot the VMs).
function(rdps_ps_matrix)
  set(_rxe_ok FALSE)
  if(RDPS_TRANSPORT_VERBS AND RDPS_TRANSPORT_SHM AND RDPS_TRANSPORT_TCP AND
     RDPS_SANITIZER STREQUAL "none" AND CMAKE_C_COMPILER_ID STREQUAL "GNU")
    set(_rxe_ok TRUE)
  endif()
  foreach(_row IN LISTS RDPS_PS_MATRIX)
    string(REPLACE "|" ";" _f "${_row}")
    list(LENGTH _f _n)
    if(NOT _n EQUAL 6)
      message(FATAL_ERROR "ps matrix row '${_row}': ${_n} fields, want 6")
    endif()
    set(_v)
    foreach(_i RANGE 5)
      list(GET _f ${_i} _x)
      string(STRIP "${_x}" _x)
      list(APPEND _v "${_x}")
    endforeach()
    list(GET _v 0 _case)
    list(GET _v 1 _model)
    list(GET _v 2 _tps)
    list(GET _v 3 _timeout)
    list(GET _v 4 _labels)
    list(GET _v 5 _command)
    separate_arguments(_tps UNIX_COMMAND "${_tps}")
    foreach(_tp IN LISTS _tps)
      if(_tp STREQUAL "rxe")
        if(_rxe_ok)
          rdps_ps_matrix_test(ps_${_case} rxe "${_model}" ${_timeout}
                              "${_labels}" "${_command}")
        endif()
        continue()
      endif()
      string(REPLACE "+" ";" _need "${_tp}")
      set(_ok TRUE)
      foreach(_t IN LISTS _need)
        string(TOUPPER ${_t} _T)
        if(NOT RDPS_TRANSPORT_${_T})
          set(_ok FALSE)
        endif()
      endforeach()
      if(NOT _ok)
        continue()
      endif()
      list(LENGTH _need _several)
      if(_several GREATER 1)
        set(_name ps_${_case})
      else()
        set(_name ps_${_case}_${_tp})
      endif()
      rdps_ps_matrix_test(${_name} ${_tp} "${_model}" ${_timeout}
                          "${_labels}" "${_command}")
    endforeach()
  endforeach()
endfunction()

rdps_ps_matrix()
