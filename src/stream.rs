//! Reading a long result without copying it: the executor hands each row
//! to a closure as it produces it (a DestReceiver given to
//! SPI_execute_extended, PostgreSQL 14 and later), instead of copying every
//! row into an SPI tuple table that lives until SPI ends. verify_audit()
//! reads the whole audit this way: no row is copied, and memory stays flat
//! however long the chain is.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgMemoryContexts;

/// What the closure gets for each row: the values of its columns (in the
/// query's order, from 0) and whether each is NULL. The values live until
/// the closure returns.
pub struct Columns<'a> {
    values: &'a [pg_sys::Datum],
    nulls: &'a [bool],
}

impl<'a> Columns<'a> {
    /// A bigint (or timestamptz: microseconds since 2000-01-01) column.
    pub fn int8(&self, column: usize) -> Option<i64> {
        (!self.nulls[column]).then(|| self.values[column].value() as i64)
    }

    /// A text (or other varlena) column's bytes, borrowed from the row: no
    /// copy unless the value was toasted, and no UTF-8 check.
    pub fn bytes(&self, column: usize) -> Option<&'a [u8]> {
        use pgrx::varlena::{varatt_is_1b_e, varatt_is_4b_c, varlena_to_byte_slice};
        if self.nulls[column] {
            return None;
        }
        // SAFETY: the query's column is a varlena (the caller's query says
        // so), and the datum lives as long as the row; a detoasted copy
        // lives in the row's memory context, emptied after the row.
        unsafe {
            let mut varlena = self.values[column].cast_mut_ptr::<pg_sys::varlena>();
            // Stored in line and uncompressed (nearly every value): read in
            // place, without a call into PostgreSQL.
            if varatt_is_1b_e(varlena) || varatt_is_4b_c(varlena) {
                varlena = pg_sys::pg_detoast_datum_packed(varlena);
            }
            Some(varlena_to_byte_slice(varlena))
        }
    }
}

/// The receiver the executor calls; `dest` first, so that a pointer to it
/// is a pointer to the whole.
#[repr(C)]
struct Receiver<'f> {
    dest: pg_sys::DestReceiver,
    each: &'f mut dyn FnMut(&Columns) -> bool,
    /// Where a row's detoasted values go, emptied after each row.
    row_memory: PgMemoryContexts,
}

#[pg_guard]
unsafe extern "C-unwind" fn receive(
    slot: *mut pg_sys::TupleTableSlot,
    dest: *mut pg_sys::DestReceiver,
) -> bool {
    // SAFETY: `dest` is the Receiver that read_only_rows gave the executor,
    // and `slot` a valid slot of the query's tuple descriptor.
    unsafe {
        let Receiver {
            each, row_memory, ..
        } = &mut *(dest as *mut Receiver);
        pg_sys::slot_getallattrs(slot);
        let n = usize::try_from((*slot).tts_nvalid).unwrap_or(0);
        let columns = Columns {
            values: std::slice::from_raw_parts((*slot).tts_values, n),
            nulls: std::slice::from_raw_parts((*slot).tts_isnull, n),
        };
        let more = row_memory.switch_to(|_| each(&columns));
        row_memory.reset();
        more
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn startup(
    _dest: *mut pg_sys::DestReceiver,
    _operation: std::ffi::c_int,
    _typeinfo: pg_sys::TupleDesc,
) {
}

#[pg_guard]
unsafe extern "C-unwind" fn nothing(_dest: *mut pg_sys::DestReceiver) {}

/// Runs the read-only query `sql` (no parameters; the caller's SPI
/// connection, no transaction id assigned) and calls `each` for every row
/// in the query's order, until `each` returns false (the executor stops
/// there). Errors are PostgreSQL's, raised as usual.
pub fn read_only_rows(sql: &str, mut each: impl FnMut(&Columns) -> bool) {
    let sql = std::ffi::CString::new(sql).expect("a query has no NUL byte");
    let mut receiver = Receiver {
        dest: pg_sys::DestReceiver {
            receiveSlot: Some(receive),
            rStartup: Some(startup),
            rShutdown: Some(nothing),
            rDestroy: Some(nothing),
            // Anything but DestSPI: SPI then keeps no tuple table.
            mydest: pg_sys::CommandDest::DestNone,
        },
        each: &mut each,
        row_memory: PgMemoryContexts::new("pg_forget row"),
    };
    let options = pg_sys::SPIExecuteOptions {
        read_only: true,
        // The whole Receiver (its first field is the DestReceiver).
        dest: std::ptr::addr_of_mut!(receiver).cast(),
        ..Default::default()
    };
    Spi::connect(|_| {
        // SAFETY: SPI is connected for the call; `receiver` outlives it.
        let code = unsafe { pg_sys::SPI_execute_extended(sql.as_ptr(), &options) };
        assert!(code >= 0, "SPI_execute_extended failed: {code}");
    });
}
