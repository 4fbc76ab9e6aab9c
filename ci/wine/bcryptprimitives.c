/*
 * bcryptprimitives.dll for wine 8, which lacks it.
 *
 * Rust's std (>= 1.78) on Windows imports ProcessPrng from this DLL to seed
 * HashMap keys and the like. Without it every Rust .exe dies at load time
 * under wine 8 (exit code 53, STATUS_DLL_NOT_FOUND). This stand-in exports
 * the one function std needs, filled from RtlGenRandom (advapi32's
 * SystemFunction036), which wine does implement. Only ci/test.sh's windows
 * leg uses it, inside its own wine prefix; it is never shipped.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -s -shared -o bcryptprimitives.dll \
 *        bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

/* Not declared by every mingw-w64 header set, so declare it here. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* Documented to always return TRUE; loop so buffers over 4 GiB work too. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x80000000u ? 0x80000000u : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
