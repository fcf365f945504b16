//! Object management (PKCS#11 3.0 §5.7): create, copy, destroy, attributes, search.

use super::{array_mut, bytes_mut, entry, new_object, object, session, template, write};
use crate::rv::{check, from_attribute};
use crate::state::module;
use craton_core::attribute::AttributeType;
use cryptoki_sys::*;

/// `C_CreateObject`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CreateObject(
    h: CK_SESSION_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    out: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the template holds `count` attributes with valid value pointers; `out` is
        // a writable handle.
        unsafe {
            let t = template(attrs, count)?;
            new_object(out, || check(m.hsm.create_object(session(h), &t)))
        }
    })
}

/// `C_CopyObject`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_CopyObject(
    h: CK_SESSION_HANDLE,
    source: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
    out: *mut CK_OBJECT_HANDLE,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the template holds `count` attributes with valid value pointers; `out` is
        // a writable handle.
        unsafe {
            let t = template(attrs, count)?;
            new_object(out, || {
                check(m.hsm.copy_object(session(h), object(source), &t))
            })
        }
    })
}

/// `C_DestroyObject`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_DestroyObject(h: CK_SESSION_HANDLE, o: CK_OBJECT_HANDLE) -> CK_RV {
    entry(|| check(module()?.hsm.destroy_object(session(h), object(o))))
}

/// `C_GetObjectSize`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetObjectSize(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    size: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        if size.is_null() {
            return Err(CKR_ARGUMENTS_BAD);
        }
        let n = check(m.hsm.object_size(session(h), object(o)))?;
        // SAFETY: `size` is non-null and writable.
        unsafe { write(size, n as CK_ULONG) }
    })
}

/// `C_GetAttributeValue`: every attribute of the template is answered; an attribute that
/// cannot be (sensitive, unknown, buffer too small) gets `CK_UNAVAILABLE_INFORMATION` and
/// its error is returned after the rest are filled in.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_GetAttributeValue(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the template holds `count` attributes.
        let attrs = unsafe { array_mut(attrs, count) }?;
        let wanted: Vec<AttributeType> = attrs.iter().map(|a| AttributeType(a.type_)).collect();
        let values = check(m.hsm.attribute_values(session(h), object(o), &wanted))?;
        let mut rv = CKR_OK;
        for (a, v) in attrs.iter_mut().zip(values) {
            let value = match v {
                Ok(v) => crate::attrs::encode(&v),
                Err(e) => {
                    a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                    if rv == CKR_OK {
                        rv = from_attribute(&e);
                    }
                    continue;
                }
            };
            if a.pValue.is_null() {
                a.ulValueLen = value.len() as CK_ULONG;
                continue;
            }
            if (a.ulValueLen as usize) < value.len() {
                a.ulValueLen = CK_UNAVAILABLE_INFORMATION;
                if rv == CKR_OK {
                    rv = CKR_BUFFER_TOO_SMALL;
                }
                continue;
            }
            // SAFETY: the caller's value buffer holds `ulValueLen >= value.len()` bytes.
            let out = unsafe { bytes_mut(a.pValue.cast(), value.len() as CK_ULONG) }?;
            out.copy_from_slice(&value);
            a.ulValueLen = value.len() as CK_ULONG;
        }
        if rv == CKR_OK { Ok(()) } else { Err(rv) }
    })
}

/// `C_SetAttributeValue`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_SetAttributeValue(
    h: CK_SESSION_HANDLE,
    o: CK_OBJECT_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the template holds `count` attributes with valid value pointers.
        let t = unsafe { template(attrs, count) }?;
        check(m.hsm.set_attribute_values(session(h), object(o), &t))
    })
}

/// `C_FindObjectsInit`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsInit(
    h: CK_SESSION_HANDLE,
    attrs: *mut CK_ATTRIBUTE,
    count: CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        // SAFETY: the template holds `count` attributes with valid value pointers.
        let t = unsafe { template(attrs, count) }?;
        check(m.hsm.find_objects_init(session(h), &t))
    })
}

/// `C_FindObjects`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjects(
    h: CK_SESSION_HANDLE,
    out: *mut CK_OBJECT_HANDLE,
    max: CK_ULONG,
    found: *mut CK_ULONG,
) -> CK_RV {
    entry(|| {
        let m = module()?;
        if found.is_null() || (out.is_null() && max > 0) {
            return Err(CKR_ARGUMENTS_BAD);
        }
        // SAFETY: `out` holds `max` handles.
        let out = unsafe { array_mut(out, max) }?;
        let handles = check(m.hsm.find_objects(session(h), out.len()))?;
        for (slot, o) in out.iter_mut().zip(&handles) {
            *slot = o.0;
        }
        // SAFETY: `found` is non-null and writable.
        unsafe { write(found, handles.len() as CK_ULONG) }
    })
}

/// `C_FindObjectsFinal`.
///
/// # Safety
/// Every pointer argument is null or valid for what the PKCS#11 specification says it
/// points to (the length beside it, a structure, a writable output).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn C_FindObjectsFinal(h: CK_SESSION_HANDLE) -> CK_RV {
    entry(|| check(module()?.hsm.find_objects_final(session(h))))
}
