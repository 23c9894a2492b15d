"""hlo_stats: flops, HBM bytes and collectives read from optimized HLO text, loops multiplied."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from emollm_jax.aot import hlo_stats
from emollm_jax.aot.hlo_stats import analyze


def compiled_text(f, *args, **jit_kwargs) -> str:
    return jax.jit(f, **jit_kwargs).lower(*args).compile().as_text()


@pytest.fixture(scope="module")
def mesh() -> Mesh:
    return Mesh(np.array(jax.devices()[:8]), ("d",))


def test_matmul_flops():
    text = compiled_text(lambda x, w: x @ w, jnp.ones((64, 128)), jnp.ones((128, 32)))
    assert analyze(text).flops == 2 * 64 * 128 * 32, text


W = jnp.full((32, 32), 0.01)
BODY_FLOPS = 2 * 8 * 32 * 32


def scanned(h):
    return jax.lax.scan(lambda h, _: (jnp.tanh(h @ W), None), h, None, length=6)[0]


def unrolled(h):
    for _ in range(6):
        h = jnp.tanh(h @ W)
    return h


def test_scan_flops_are_multiplied_by_trip_count():
    h = jnp.ones((8, 32))
    loop = analyze(compiled_text(scanned, h))
    flat = analyze(compiled_text(unrolled, h))
    assert loop.flops == 6 * BODY_FLOPS
    assert [trips for _, trips in loop.while_loops] == [6]
    assert flat.while_loops == []
    assert loop.flops == pytest.approx(flat.flops, rel=0.01)


def test_fori_loop_trip_count():
    looped = lambda h: jax.lax.fori_loop(0, 5, lambda i, h: h @ W, h)  # noqa: E731
    text = compiled_text(looped, jnp.ones((8, 32)))
    stats = analyze(text)
    assert [trips for _, trips in stats.while_loops] == [5], text
    assert stats.flops == 5 * BODY_FLOPS


def test_unrolled_mlp_matches_xla_cost_analysis():
    def mlp(x, ws):
        for w in ws:
            x = jax.nn.relu(x @ w + 1.0)
        return x

    args = (jnp.ones((64, 256)), [jnp.ones((256, 256)), jnp.ones((256, 128)), jnp.ones((128, 64))])
    compiled = jax.jit(mlp).lower(*args).compile()
    stats = analyze(compiled.as_text())
    assert stats.flops == 2 * 64 * (256 * 256 + 256 * 128 + 128 * 64)
    assert stats.flops == pytest.approx(compiled.cost_analysis()["flops"], rel=0.05)


def test_patch_embedding_convolution_flops():
    def patchify(x, k):
        dims = ("NHWC", "HWIO", "NHWC")
        return jax.lax.conv_general_dilated(x, k, (8, 8), "VALID", dimension_numbers=dims)

    text = compiled_text(patchify, jnp.ones((2, 32, 32, 3)), jnp.ones((8, 8, 3, 16)))
    assert analyze(text).flops == 2 * (2 * 4 * 4 * 16) * (8 * 8 * 3), text


def test_elementwise_add_bytes():
    text = compiled_text(lambda a, b: a + b, jnp.ones(1024), jnp.ones(1024))
    stats = analyze(text)
    assert stats.bytes_accessed == 3 * 4096, text
    assert stats.flops == 0


def test_replicated_output_all_gathers(mesh):
    x = jax.device_put(jnp.ones((64, 16)), NamedSharding(mesh, P("d")))
    text = compiled_text(lambda x: x * 2, x, out_shardings=NamedSharding(mesh, P()))
    gather = analyze(text).collectives.get("all-gather")
    assert gather is not None, text
    assert gather["count"] >= 1
    assert gather["bytes"] == 64 * 16 * 4
    assert gather["groups"] == 8


def test_sum_over_sharded_dim_all_reduces(mesh):
    x = jax.device_put(jnp.ones((64, 16)), NamedSharding(mesh, P("d")))
    text = compiled_text(lambda x: x.sum(0), x, out_shardings=NamedSharding(mesh, P()))
    reduce = analyze(text).collectives.get("all-reduce")
    assert reduce is not None, text
    assert reduce["count"] >= 1
    assert reduce["bytes"] == 16 * 4
    assert reduce["groups"] == 8


def test_psum_scatter_reduce_scatters_the_full_buffer(mesh):
    scatter = jax.shard_map(
        lambda x: jax.lax.psum_scatter(x, "d", tiled=True),
        mesh=mesh,
        in_specs=P(),
        out_specs=P("d"),
    )
    text = compiled_text(scatter, jnp.ones((64, 16)))
    stats = hlo_stats.collectives_summary(analyze(text))
    assert stats["reduce-scatter"] == {"count": 1, "bytes": 64 * 16 * 4, "groups": 8}, text


def test_psum_over_one_mesh_axis_records_group_size():
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("a", "b"))
    total = jax.shard_map(
        lambda x: jax.lax.psum(x, "b"), mesh=mesh, in_specs=P("a", "b"), out_specs=P("a")
    )
    text = compiled_text(total, jnp.ones((64, 16)))
    assert analyze(text).collectives["all-reduce"]["groups"] == 4, text


TPU_STEP = """\
HloModule jit_step, is_scheduled=true, num_partitions=8

FileNames
1 "/tmp/step.py"

%fused_dot (p0: bf16[16,256], p1: bf16[256,512]) -> f32[16,512] {
  %p0 = bf16[16,256]{1,0:T(8,128)(2,1)} parameter(0)
  %p1 = bf16[256,512]{1,0:T(8,128)(2,1)} parameter(1)
  ROOT %dot.1 = f32[16,512]{1,0:T(8,128)} dot(bf16[16,256]{1,0:T(8,128)(2,1)} %p0, bf16[256,512]{1,0:T(8,128)(2,1)} %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%body (arg: (s32[], bf16[16,256], bf16[256,64])) -> (s32[], bf16[16,256], bf16[256,64]) {
  %arg = (s32[]{:T(128)}, bf16[16,256]{1,0:T(8,128)(2,1)}, bf16[256,64]{1,0:T(8,128)(2,1)S(1)}) parameter(0)
  %i = s32[]{:T(128)} get-tuple-element(%arg), index=0
  %h = bf16[16,256]{1,0:T(8,128)(2,1)} get-tuple-element(%arg), index=1
  %wshard = bf16[256,64]{1,0:T(8,128)(2,1)} get-tuple-element(%arg), index=2
  %ag-start = (bf16[256,64]{1,0}, bf16[256,512]{1,0}) all-gather-start(bf16[256,64]{1,0} %wshard), channel_id=1, replica_groups=[1,8]<=[8], dimensions={1}, use_global_device_ids=true
  %ag-done = bf16[256,512]{1,0:T(8,128)(2,1)} all-gather-done((bf16[256,64]{1,0}, bf16[256,512]{1,0}) %ag-start)
  %fusion.1 = f32[16,512]{1,0:T(8,128)} fusion(bf16[16,256]{1,0} %h, bf16[256,512]{1,0} %ag-done), kind=kOutput, calls=%fused_dot, metadata={op_name="jit(step)/body=%cond"}
  this line is not HLO (
  %one = s32[] constant(1)
  %next = s32[] add(s32[] %i, s32[] %one)
  ROOT %t = (s32[], bf16[16,256]{1,0}, bf16[256,64]{1,0}) tuple(%next, %h, %wshard)
}

%cond (arg.1: (s32[], bf16[16,256], bf16[256,64])) -> pred[] {
  %arg.1 = (s32[], bf16[16,256]{1,0}, bf16[256,64]{1,0}) parameter(0)
  %i.1 = s32[] get-tuple-element(%arg.1), index=0
  %n = s32[] constant(32)
  ROOT %lt = pred[] compare(s32[] %i.1, s32[] %n), direction=LT
}

%sum (a: bf16[], b: bf16[]) -> bf16[] {
  %a = bf16[] parameter(0)
  %b = bf16[] parameter(1)
  ROOT %add = bf16[] add(%a, %b)
}

ENTRY %main (x: bf16[16,256], w: bf16[256,64]) -> bf16[2,256] {
  %x = bf16[16,256]{1,0} parameter(0)
  %w = bf16[256,64]{1,0} parameter(1)
  %zero = s32[] constant(0)
  %init = (s32[], bf16[16,256]{1,0}, bf16[256,64]{1,0}) tuple(%zero, %x, %w)
  %loop = (s32[], bf16[16,256]{1,0}, bf16[256,64]{1,0}) while(%init), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"32"}}
  %out = bf16[16,256]{1,0} get-tuple-element(%loop), index=1
  %ar = bf16[16,256]{1,0} all-reduce(%out), channel_id=2, replica_groups={{0,1,2,3},{4,5,6,7}}, to_apply=%sum
  ROOT %rs = bf16[2,256]{1,0} reduce-scatter(%ar), channel_id=3, replica_groups=[1,8]<=[8], dimensions={0}, to_apply=%sum
}
"""


def test_hand_written_tpu_step():
    stats = analyze(TPU_STEP)
    assert stats.while_loops == [("body", 32)]
    assert stats.flops == 32 * 2 * 16 * 512 * 256
    assert stats.collectives == {
        "all-gather": {"count": 32, "bytes": 32 * 256 * 512 * 2, "groups": 8},
        "all-reduce": {"count": 1, "bytes": 16 * 256 * 2, "groups": 4},
        "reduce-scatter": {"count": 1, "bytes": 16 * 256 * 2, "groups": 8},
    }
    all_gather_start = 256 * 64 * 2 + 256 * 512 * 2
    dot_fusion = 16 * 256 * 2 + 256 * 512 * 2 + 16 * 512 * 4
    body = all_gather_start + dot_fusion + 3 * 4
    condition = 4 + 4 + 1
    entry = (16 * 256 * 2) * 2 + (16 * 256 * 2 + 2 * 256 * 2)
    assert stats.bytes_accessed == 32 * (body + condition) + entry


def test_trip_count_inferred_from_condition_constant():
    stats = analyze(TPU_STEP.replace(', backend_config={"known_trip_count":{"n":"32"}}', ""))
    assert stats.while_loops == [("body", 32)]
    assert stats.collectives["all-gather"]["count"] == 32


def test_unknown_trip_count_counts_the_body_once():
    text = TPU_STEP.replace(', backend_config={"known_trip_count":{"n":"32"}}', "")
    limit = "%n = s32[] get-tuple-element(%arg.1), index=0"
    stats = analyze(text.replace("%n = s32[] constant(32)", limit))
    assert stats.while_loops == [("body", None)]
    assert stats.flops == 2 * 16 * 512 * 256


CONDITIONAL = """\
HloModule cond_module, entry_computation_layout={(pred[], f32[4,8]{1,0})->f32[4,2]{1,0}}

%left (l: f32[4,8]) -> f32[4,2] {
  %l = f32[4,8]{1,0} parameter(0)
  %wl = f32[8,2]{1,0} constant({...})
  ROOT %dl = f32[4,2]{1,0} dot(%l, %wl), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%right (r: f32[4,8]) -> f32[4,2] {
  %r = f32[4,8]{1,0} parameter(0)
  %perm = (f32[4,8]{1,0}, f32[4,8]{1,0}, u32[], u32[]) collective-permute-start(%r), channel_id=1, source_target_pairs={{0,1},{1,0}}
  %permuted = f32[4,8]{1,0} collective-permute-done(%perm)
  ROOT %slice = f32[4,2]{1,0} slice(%permuted), slice={[0:4], [0:2]}
}

ENTRY %main (p: pred[], x: f32[4,8]) -> f32[4,2] {
  %p = pred[] parameter(0)
  %x = f32[4,8]{1,0} parameter(1)
  ROOT %c = f32[4,2]{1,0} conditional(%p, %x, %x), branch_computations={%left, %right}
}
"""


def test_conditional_counts_every_branch_once():
    stats = analyze(CONDITIONAL)
    assert stats.flops == 2 * 4 * 2 * 8
    permutes = {"collective-permute": {"count": 1, "bytes": 4 * 8 * 4, "groups": 0}}
    assert stats.collectives == permutes
    dot = 4 * 8 * 4 + 8 * 2 * 4 + 4 * 2 * 4
    permute = 4 * 8 * 4 + 4 * 8 * 4
    slice_ = 4 * 8 * 4 + 4 * 2 * 4
    assert stats.bytes_accessed == dot + permute + slice_


@pytest.mark.parametrize(
    "text", ["", "not hlo at all\n}\n{", "ENTRY %main () -> f32[] {\n  %x = f32["]
)
def test_garbage_is_not_a_crash(text):
    stats = analyze(text)
    assert (stats.flops, stats.bytes_accessed, stats.collectives) == (0, 0, {})


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("f32[8,16]{1,0}", 512),
        ("bf16[8,128]{1,0:T(8,128)(2,1)}", 2048),
        ("(f32[2]{0}, s32[])", 12),
        ("token[]", 0),
        ("f8e4m3fn[10]", 10),
        ("c64[3]", 24),
        ("pred[7]", 7),
        ("s4[4]", 2),
    ],
)
def test_shape_bytes(shape, expected):
    assert hlo_stats.shape_bytes(shape) == expected


def test_counted_loop_reads_init_limit_and_step():
    """XLA:TPU's windowed einsums step their counter by 2 and carry no known_trip_count: the
    trip count is read from the condition's limit, the body's step and the initial tuple."""
    text = TPU_STEP.replace(', backend_config={"known_trip_count":{"n":"32"}}', "")
    text = text.replace("%one = s32[] constant(1)", "%one = s32[] constant(2)")
    assert analyze(text).while_loops == [("body", 16)]
    text = text.replace("%zero = s32[] constant(0)", "%zero = s32[] constant(4)")
    assert analyze(text).while_loops == [("body", 14)]  # ceil((32 - 4) / 2)


ON_CHIP = """\
HloModule m, num_partitions=1

%fused (p0: f32[256], p1: f32[256]) -> f32[256] {
  %p0 = f32[256]{0} parameter(0)
  %p1 = f32[256]{0} parameter(1)
  ROOT %m = f32[256]{0} multiply(%p0, %p1)
}

ENTRY %main (a: f32[256], b: f32[256]) -> f32[256] {
  %a = f32[256]{0:T(256)S(1)} parameter(0)
  %b = f32[256]{0:T(256)} parameter(1)
  ROOT %f = f32[256]{0:T(256)} fusion(%a, %b), kind=kLoop, calls=%fused
}
"""


def test_on_chip_memory_space_moves_no_hbm_bytes():
    # %a lives in memory space S(1) (TPU VMEM): only %b is read and %f written from/to HBM.
    assert analyze(ON_CHIP).bytes_accessed == 2 * 1024
    assert analyze(ON_CHIP.replace("S(1)", "")).bytes_accessed == 3 * 1024


def test_dynamic_update_slice_is_in_place():
    def write_row(buf, row, i):
        return jax.lax.dynamic_update_slice(buf, row, (i, 0))

    buf = jnp.zeros((1024, 1024), jnp.float32)
    text = compiled_text(write_row, buf, jnp.ones((1, 1024)), 3, donate_argnums=0)
    stats = analyze(text)
    assert 0 < stats.bytes_accessed <= 4 * 1024 * 4 + 64, text  # the row (and index), not 4 MiB


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_padded_convolution_counts_real_taps_like_xla(padding):
    def conv(x, w):
        return jax.lax.conv_general_dilated(
            x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    x, w = jnp.ones((2, 9, 9, 4)), jnp.ones((3, 3, 4, 8))
    lowered = jax.jit(conv).lower(x, w)
    xla = lowered.cost_analysis()["flops"]
    assert analyze(lowered.compile().as_text()).flops == pytest.approx(xla, rel=0.01)


def test_counted_loop_looks_through_copies():
    text = TPU_STEP.replace(', backend_config={"known_trip_count":{"n":"32"}}', "")
    text = text.replace("%one = s32[] constant(1)", "%one = s32[] constant(2)")
    text = text.replace(
        "%next = s32[] add(s32[] %i, s32[] %one)",
        "%ic = s32[] copy(s32[] %i)\n  %next = s32[] add(s32[] %ic, s32[] %one)",
    )
    assert analyze(text).while_loops == [("body", 16)]


# A splash attention forward kernel as XLA:TPU prints it (body elided): MQA form, queries
# [batch 2, kv heads 2, group 2, 1024, 128], keys [2, 2, 1024, 128], 2 x 2 blocks of 512.
SPLASH_FWD = """
HloModule m, num_partitions=1

ENTRY %main (p0: bf16[2,2,2,1024,128], p1: bf16[2,2,1024,128], p2: bf16[2,2,1024,128]) -> bf16[2,2,2,1024,128] {
  %p0 = bf16[2,2,2,1024,128]{4,3,2,1,0} parameter(0)
  %p1 = bf16[2,2,1024,128]{3,2,1,0} parameter(1)
  %p2 = bf16[2,2,1024,128]{3,2,1,0} parameter(2)
  %m0 = s8[1,2,2]{2,1,0} constant({...})
  %m1 = s8[1,2,2]{2,1,0} constant({...})
  ROOT %splash_mqa_fwd_no_residuals.1 = bf16[2,2,2,1024,128]{4,3,2,1,0} custom-call(%m0, %m1, %p0, %p1, %p2), custom_call_target="tpu_custom_call", operand_layout_constraints={s8[1,2,2]{2,1,0}, s8[1,2,2]{2,1,0}, bf16[2,2,2,1024,128]{4,3,2,1,0}, bf16[2,2,1024,128]{3,2,1,0}, bf16[2,2,1024,128]{3,2,1,0}}, metadata={op_name="jit(f)/attention/shard_map/splash_mqa_fwd_no_residuals/pallas_call"}, backend_config={"custom_call_config":{"body":"TUzvUgFNTElS"}}
}
"""


def test_splash_kernel_cost_is_modelled_from_its_shapes():
    stats = analyze(SPLASH_FWD)
    heads, t, d = 2 * 2 * 2, 1024, 128
    causal = 3 / 4  # 2 x 2 blocks: the upper-right one is skipped
    assert stats.flops == 2 * (2 * heads * t * t * d) * causal
    assert stats.parts["attention"]["flops"] == stats.flops
    q = kv = 2 * heads * t * d  # bytes of the queries (bf16); the output is the same size
    k = 2 * (2 * 2) * t * d
    once = q + 2 * k + q
    again = 2 * k * (2 * causal - 1)  # keys and values streamed once more for the 2nd query block
    assert stats.bytes_accessed == once + again


def test_splash_in_the_vision_tower_counts_every_block():
    text = SPLASH_FWD.replace("jit(f)/attention/", "jit(f)/vision_tower/attention/")
    assert analyze(text).flops == 2 * (2 * 8 * 1024 * 1024 * 128)


def test_an_instruction_spanning_lines_is_one_instruction():
    """XLA:TPU prints a kernel's metadata over several lines; the next line starting with '}'
    must not end the computation (the instruction after it still counts)."""
    text = SPLASH_FWD.replace(
        'backend_config={"custom_call_config":{"body":"TUzvUgFNTElS"}}',
        'frontend_attributes={kernel_metadata={\n"xprof_metadata":"{\\\\"block_q\\\\": 512}"\n}}, '
        'backend_config={"custom_call_config":{"body":"TUzvUgFNTElS"}}',
    ).replace(
        "  ROOT %splash",
        "  %splash",
    ).replace(
        "\n}\n",
        "\n  ROOT %d = f32[8,8]{1,0} dot(f32[8,8]{1,0} %x, f32[8,8]{1,0} %x), "
        "lhs_contracting_dims={1}, rhs_contracting_dims={0}\n}\n",
    )
    stats = analyze(text)
    assert stats.flops == analyze(SPLASH_FWD).flops + 2 * 8 * 8 * 8
