"""python-pkcs11 brings existing keys into the token with C_UnwrapKey. openssl makes PKCS#8 RSA-2048, P-256 and
Ed25519 private keys; an AES-256 key is generated in the token (CKM_AES_KEY_GEN, a session object made
non-sensitive here so that openssl can wrap under it) and openssl wraps each key under it (RFC 5649,
`openssl enc -id-aes256-wrap-pad`); python-pkcs11 unwraps them with CKM_AES_KEY_WRAP_PAD into token objects, signs
through the module (SHA256-RSA-PKCS, ECDSA-SHA256, EDDSA) and openssl verifies each signature against the public key
of the original file. An AES-128 key made with C_CreateObject unwraps an Ed25519 key wrapped by RFC 3394
(CKM_AES_KEY_WRAP). Refusals: tampered data (CKR_WRAPPED_KEY_INVALID), a truncated one (CKR_WRAPPED_KEY_LEN_RANGE),
the wrong AES key and a PKCS#1 (not PKCS#8) RSA key (CKR_WRAPPED_KEY_INVALID), a private key as unwrapping key
(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT), a template naming another key type and an AES key asked for as a token
object (CKR_TEMPLATE_INCONSISTENT). Usage: python_pkcs11_unwrap.py MODULE TOKEN_LABEL, run in a scratch directory
with TCHSM_PKCS11_CONFIG set and the user PIN initialised."""
import subprocess
import sys

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as e


def run(*args):
    out = subprocess.run(args, capture_output=True)
    if out.returncode != 0:
        raise SystemExit(f'{args}: {out.stdout.decode()} {out.stderr.decode()}')
    return out.stdout


def der_signature(sig):
    """r || s (PKCS#11) as the DER ECDSA-Sig-Value openssl reads."""
    def der_int(x):
        b = x.to_bytes((x.bit_length() + 8) // 8, 'big')
        return b'\x02' + bytes([len(b)]) + b
    body = der_int(int.from_bytes(sig[:32], 'big')) + der_int(int.from_bytes(sig[32:], 'big'))
    return b'\x30' + bytes([len(body)]) + body


def expect(error, f):
    try:
        f()
    except error:
        return
    except pkcs11.PKCS11Error as other:
        raise SystemExit(f'expected {error.__name__}, got {type(other).__name__}')
    raise SystemExit(f'expected {error.__name__}, got success')


def wrap(cipher, kek, name, iv):
    """openssl's AES key wrap of NAME.p8 under KEK (hex key given on the command line: a test key only)."""
    return run('openssl', 'enc', f'-{cipher}', '-K', kek.hex(), '-iv', iv, '-in', f'{name}.p8')


for name, args in [('rsa', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']),
                   ('p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']),
                   ('ed25519', ['-algorithm', 'ED25519'])]:
    run('openssl', 'genpkey', *args, '-out', f'{name}.pem')
    # PKCS#8 DER (`genpkey -outform DER` writes RSA and EC keys in their traditional forms).
    run('openssl', 'pkcs8', '-topk8', '-nocrypt', '-in', f'{name}.pem', '-outform', 'DER', '-out', f'{name}.p8')
    run('openssl', 'pkey', '-in', f'{name}.pem', '-pubout', '-out', f'{name}.pub.pem')

data = b'signed by a key that came in wrapped'
open('data', 'wb').write(data)


def verify(name, key, mechanism):
    sig = key.sign(data, mechanism=mechanism)
    if name == 'p256':
        sig = der_signature(sig)
    open(f'{name}.sig', 'wb').write(sig)
    if name == 'ed25519':
        out = run('openssl', 'pkeyutl', '-verify', '-pubin', '-inkey', f'{name}.pub.pem', '-rawin', '-in', 'data',
                  '-sigfile', f'{name}.sig')
    else:
        out = run('openssl', 'dgst', '-sha256', '-verify', f'{name}.pub.pem', '-signature', f'{name}.sig', 'data')
    if b'Verified' not in out:
        raise SystemExit(f'{name}: {out}')
    print(f'{name}: unwrapped, signed, openssl: {out.decode().strip()}')


lib = pkcs11.lib(sys.argv[1])
token = lib.get_token(token_label=sys.argv[2])
with token.open(rw=True, user_pin='user-pin-5678') as s:
    kek = s.generate_key(KeyType.AES, 256, label='kek',
                         template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True})
    assert kek[Attribute.LOCAL] and not kek[Attribute.TOKEN] and kek[Attribute.VALUE_LEN] == 32
    value = kek[Attribute.VALUE]
    expect(e.TemplateInconsistent, lambda: s.generate_key(KeyType.AES, 128, store=True))

    wrapped = {name: wrap('id-aes256-wrap-pad', value, name, 'A65959A6') for name in ['rsa', 'p256', 'ed25519']}
    for name, key_type, mechanism in [('rsa', KeyType.RSA, Mechanism.SHA256_RSA_PKCS),
                                      ('p256', KeyType.EC, Mechanism.ECDSA_SHA256),
                                      ('ed25519', KeyType.EC_EDWARDS, Mechanism.EDDSA)]:
        key = kek.unwrap_key(ObjectClass.PRIVATE_KEY, key_type, wrapped[name], label=f'unwrapped-{name}',
                             store=True, mechanism=Mechanism.AES_KEY_WRAP_PAD)
        # Imported, not born in the token.
        assert key[Attribute.SENSITIVE] and not key[Attribute.EXTRACTABLE], name
        assert not key[Attribute.ALWAYS_SENSITIVE] and not key[Attribute.NEVER_EXTRACTABLE], name
        assert not key[Attribute.LOCAL], name
        found = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label=f'unwrapped-{name}')
        verify(name, found, mechanism)

    tampered = bytearray(wrapped['p256'])
    tampered[20] ^= 1
    expect(e.WrappedKeyInvalid, lambda: kek.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.EC, bytes(tampered),
                                                       mechanism=Mechanism.AES_KEY_WRAP_PAD))
    expect(e.WrappedKeyLenRange, lambda: kek.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.EC, wrapped['p256'][:-3],
                                                        mechanism=Mechanism.AES_KEY_WRAP_PAD))
    expect(e.TemplateInconsistent, lambda: kek.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, wrapped['p256'],
                                                          mechanism=Mechanism.AES_KEY_WRAP_PAD))
    # The RSA key in its traditional form (PKCS#1 RSAPrivateKey), not PKCS#8: refused.
    run('openssl', 'rsa', '-in', 'rsa.pem', '-traditional', '-outform', 'DER', '-out', 'rsa-pkcs1.p8')
    expect(e.WrappedKeyInvalid, lambda: kek.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.RSA,
                                                       wrap('id-aes256-wrap-pad', value, 'rsa-pkcs1', 'A65959A6'),
                                                       mechanism=Mechanism.AES_KEY_WRAP_PAD))
    rsa = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label='unwrapped-rsa')
    expect(e.UnwrappingKeyTypeInconsistent,
           lambda: rsa.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.EC, wrapped['p256'],
                                  mechanism=Mechanism.AES_KEY_WRAP_PAD))

    # A key both sides know, written with C_CreateObject; RFC 3394 (the Ed25519 PKCS#8 is 48 bytes).
    shared = bytes(range(16))
    kek128 = s.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                              Attribute.VALUE: shared, Attribute.UNWRAP: True, Attribute.LABEL: 'shared'})
    expect(e.AttributeSensitive, lambda: kek128[Attribute.VALUE])
    expect(e.WrappedKeyInvalid, lambda: kek128.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.EC, wrapped['p256'],
                                                          mechanism=Mechanism.AES_KEY_WRAP_PAD))
    key = kek128.unwrap_key(ObjectClass.PRIVATE_KEY, KeyType.EC_EDWARDS,
                            wrap('id-aes128-wrap', shared, 'ed25519', 'A6A6A6A6A6A6A6A6'),
                            label='unwrapped-kw', mechanism=Mechanism.AES_KEY_WRAP)
    verify('ed25519', key, Mechanism.EDDSA)
print('all unwrap checks passed')
