//! GC hints for body chunks. V8 frees Buffer memory only once ~64 MiB of it has piled up since
//! the last full collection, and a streamed body's chunks are garbage almost at once: pulled
//! ones when JS has consumed them, written ones when Rust has copied them. Reporting each chunk
//! twice more as external memory, undone by a finalizer when its object is collected, brings
//! that collection at about a third of the pile, which keeps a streaming transfer's footprint
//! well under 64 MiB.

use napi::sys::{napi_env, napi_value, Status};

/// Chunks smaller than this are not worth a finalizer.
const GC_HINT_MIN_BYTES: usize = 16 * 1024;
/// Extra external memory reported per chunk byte.
const GC_HINT_FACTOR: usize = 2;

unsafe extern "C" fn release_gc_hint(
    env: napi_env,
    data: *mut std::ffi::c_void,
    _hint: *mut std::ffi::c_void,
) {
    let mut adjusted = 0i64;
    // SAFETY: called by the runtime on the JS thread; `data` carries the reported byte count.
    unsafe { napi::sys::napi_adjust_external_memory(env, -(data as usize as i64), &mut adjusted) };
}

/// Report `len` bytes held by `value` as garbage-to-be until `value` is collected.
///
/// # Safety
/// On the JS thread, with `env` and `value` live in the current call.
pub unsafe fn hint_garbage(env: napi_env, value: napi_value, len: usize) {
    if len < GC_HINT_MIN_BYTES {
        return;
    }
    let mut adjusted = 0i64;
    let hint = (len * GC_HINT_FACTOR) as i64;
    // SAFETY: plain N-API calls on the JS thread with a live env and value (the caller's word).
    unsafe {
        if napi::sys::napi_adjust_external_memory(env, hint, &mut adjusted) == Status::napi_ok {
            napi::sys::napi_add_finalizer(
                env,
                value,
                hint as usize as *mut std::ffi::c_void,
                Some(release_gc_hint),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }
}
