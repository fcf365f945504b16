// Java SunPKCS11 against a PKCS#11 module: `java Interop.java <sunpkcs11.cfg> <user PIN>`.
// Run by `cargo xtask interop` against libcraton_hsm.so and SoftHSMv2. SunPKCS11 opens
// read-only sessions and generates session key pairs in them, so this also proves that
// session objects may be created without a read/write session.

import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.spec.AlgorithmParameterSpec;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.RSAKeyGenParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

public class Interop {
    static final byte[] MESSAGE =
            "Java SunPKCS11 asks the token to sign this".getBytes(StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        Provider token = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(token);
        KeyStore store = KeyStore.getInstance("PKCS11", token);
        store.load(null, args[1].toCharArray());

        signAndVerify(token, "EC", new ECGenParameterSpec("secp256r1"), "SHA256withECDSA", "SunEC");
        signAndVerify(token, "RSA", new RSAKeyGenParameterSpec(2048, RSAKeyGenParameterSpec.F4),
                "SHA256withRSA", "SunRsaSign");
        aesGcm(token);
        System.out.println("ok: EC and RSA sign/verify (token and JDK agree), AES-GCM round trip");
    }

    static void signAndVerify(Provider token, String keyType, AlgorithmParameterSpec spec,
            String algorithm, String jdkProvider) throws Exception {
        KeyPairGenerator generator = KeyPairGenerator.getInstance(keyType, token);
        generator.initialize(spec);
        KeyPair pair = generator.generateKeyPair();

        Signature signer = Signature.getInstance(algorithm, token);
        signer.initSign(pair.getPrivate());
        signer.update(MESSAGE);
        byte[] signature = signer.sign();

        Signature inToken = Signature.getInstance(algorithm, token);
        inToken.initVerify(pair.getPublic());
        inToken.update(MESSAGE);
        require(inToken.verify(signature), keyType + " signature rejected by the token");

        // The JDK's own provider must accept the token's signature on the exported public key.
        PublicKey exported = KeyFactory.getInstance(keyType, jdkProvider)
                .generatePublic(new X509EncodedKeySpec(pair.getPublic().getEncoded()));
        Signature jdk = Signature.getInstance(algorithm, jdkProvider);
        jdk.initVerify(exported);
        jdk.update(MESSAGE);
        require(jdk.verify(signature), keyType + " signature rejected by " + jdkProvider);

        byte[] tampered = MESSAGE.clone();
        tampered[0] ^= 1;
        inToken.initVerify(pair.getPublic());
        inToken.update(tampered);
        require(!inToken.verify(signature), keyType + " signature accepted a changed message");
    }

    static void aesGcm(Provider token) throws Exception {
        KeyGenerator generator = KeyGenerator.getInstance("AES", token);
        generator.init(256);
        SecretKey key = generator.generateKey();
        byte[] iv = new byte[12];
        new SecureRandom().nextBytes(iv);
        byte[] aad = "header".getBytes(StandardCharsets.UTF_8);

        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding", token);
        cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
        cipher.updateAAD(aad);
        byte[] sealed = cipher.doFinal(MESSAGE);
        require(sealed.length == MESSAGE.length + 16, "GCM output is not message + 16-byte tag");

        cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv));
        cipher.updateAAD(aad);
        require(Arrays.equals(cipher.doFinal(sealed), MESSAGE), "GCM round trip changed the data");

        sealed[3] ^= 1;
        cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, iv));
        cipher.updateAAD(aad);
        try {
            cipher.doFinal(sealed);
            throw new AssertionError("GCM accepted a changed ciphertext");
        } catch (javax.crypto.AEADBadTagException expected) {
            // the tag check failed, as it must
        }
    }

    static void require(boolean condition, String failure) {
        if (!condition) {
            throw new AssertionError(failure);
        }
    }
}
