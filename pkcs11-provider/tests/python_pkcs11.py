"""python-pkcs11 drives the module: EC domain parameters, a P-256 key pair generated in the token, the private key
found again by label, CKM_ECDSA_SHA256, the token's own verify, then openssl checks the signature against the public
key python-pkcs11 encoded (r || s turned into DER here). Usage: python_pkcs11.py MODULE TOKEN_LABEL, run in a
scratch directory with TCHSM_PKCS11_CONFIG set and the user PIN initialised."""
import subprocess
import sys

import pkcs11
from pkcs11 import KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters, encode_ec_public_key
lib = pkcs11.lib(sys.argv[1])
token = lib.get_token(token_label=sys.argv[2])
with token.open(rw=True, user_pin='user-pin-5678') as s:
    params = s.create_domain_parameters(KeyType.EC, {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters('secp256r1')}, local=True)
    pub, priv = params.generate_keypair(store=True, label='py-ec')
    found = s.get_key(object_class=ObjectClass.PRIVATE_KEY, label='py-ec')
    data = b'signed through python-pkcs11'
    sig = found.sign(data, mechanism=Mechanism.ECDSA_SHA256)
    assert pub.verify(data, sig, mechanism=Mechanism.ECDSA_SHA256)
    open('pub.der','wb').write(encode_ec_public_key(pub))
    r, s_ = int.from_bytes(sig[:32],'big'), int.from_bytes(sig[32:],'big')
    def der_int(x):
        b = x.to_bytes((x.bit_length()+8)//8,'big')
        return b'\x02'+bytes([len(b)])+b
    body = der_int(r)+der_int(s_)
    open('sig.der','wb').write(b'\x30'+bytes([len(body)])+body)
    open('data','wb').write(data)
    out = subprocess.run(['openssl', 'dgst', '-sha256', '-verify', 'pub.der', '-keyform', 'DER',
                          '-signature', 'sig.der', 'data'], capture_output=True, text=True)
    print(out.stdout, out.stderr)
    sys.exit(0 if 'Verified OK' in out.stdout else 1)
