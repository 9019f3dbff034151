#include "tcp-gso.h"

#include <cstring>

#include "bytes.h"
#include "checksum.h"

namespace sluice {

OffloadCounters offloadCounters;

namespace {

constexpr uint8_t kFin = 0x01, kPsh = 0x08, kCwr = 0x80;

}  // namespace

bool ParseTcp(const uint8_t* ip, size_t len, TcpInfo* t) {
  if (len < 20) return false;
  int version = ip[0] >> 4;
  if (version == 4) {
    size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    if (ihl < 20 || ip[9] != 6) return false;
    size_t total = Get16(ip + 2);
    if (total < ihl + 20 || total > len) return false;
    if (Get16(ip + 6) & 0x3fff) return false;  // MF or a fragment offset
    t->l4 = ihl;
    t->total = total;
  } else if (version == 6) {
    if (len < 60 || ip[6] != 6) return false;
    size_t total = 40 + static_cast<size_t>(Get16(ip + 4));
    if (total < 60 || total > len) return false;
    t->l4 = 40;
    t->total = total;
  } else {
    return false;
  }
  size_t hl = static_cast<size_t>(ip[t->l4 + 12] >> 4) * 4;
  if (hl < 20 || t->l4 + hl > t->total) return false;
  t->tcphl = hl;
  t->version = version;
  return true;
}

uint16_t TcpPseudoSum(const uint8_t* ip, const TcpInfo& t, size_t l4len) {
  uint64_t acc = t.version == 4 ? Sum16(ip + 12, 8) : Sum16(ip + 8, 32);
  acc += 6 + (l4len & 0xffff) + (l4len >> 16);
  return Fold(acc);
}

size_t SegmentCount(const TcpInfo& t, size_t mss) {
  if (mss == 0) return 0;
  size_t payload = t.total - t.l4 - t.tcphl;
  size_t n = payload == 0 ? 1 : (payload + mss - 1) / mss;
  return n > kMaxSegments ? 0 : n;
}

size_t SegmentPayload(const TcpInfo& t, size_t mss, size_t k) {
  size_t payload = t.total - t.l4 - t.tcphl;
  size_t start = k * mss;
  if (start >= payload) return 0;
  return payload - start < mss ? payload - start : mss;
}

size_t BuildSegmentHeader(const uint8_t* prefix, size_t prefixLen, const uint8_t* ip, const TcpInfo& t,
                          size_t mss, size_t k, size_t n, uint8_t* out) {
  if (prefixLen > 0) memcpy(out, prefix, prefixLen);
  uint8_t* h = out + prefixLen;
  size_t hl = t.l4 + t.tcphl;
  memcpy(h, ip, hl);
  size_t pay = SegmentPayload(t, mss, k);
  if (t.version == 4) {
    Put16(h + 2, static_cast<uint32_t>(hl + pay));
    Put16(h + 4, (Get16(h + 4) + k) & 0xffff);
    h[10] = h[11] = 0;
    Put16(h + 10, static_cast<uint16_t>(~Sum16(h, t.l4)));
  } else {
    Put16(h + 4, static_cast<uint32_t>(hl + pay - 40));
  }
  uint8_t* th = h + t.l4;
  Put32(th + 4, Get32(th + 4) + static_cast<uint32_t>(k * mss));
  if (k + 1 < n) th[13] &= static_cast<uint8_t>(~(kFin | kPsh));
  if (k > 0) th[13] &= static_cast<uint8_t>(~kCwr);
  th[16] = th[17] = 0;
  uint64_t acc = static_cast<uint64_t>(TcpPseudoSum(h, t, t.tcphl + pay)) + Sum16(th, t.tcphl) +
                 Sum16(ip + hl + k * mss, pay);
  Put16(th + 16, static_cast<uint16_t>(~Fold(acc)));
  return prefixLen + hl;
}

bool CompletePartialChecksum(uint8_t* pkt, size_t len, size_t csumStart, size_t csumOffset) {
  if (csumStart >= len || csumOffset + 2 > len - csumStart) return false;
  uint16_t c = static_cast<uint16_t>(~Sum16(pkt + csumStart, len - csumStart));
  Put16(pkt + csumStart + csumOffset, c == 0 ? 0xffff : c);
  return true;
}

void StoreTcpChecksum(uint8_t* ip, const TcpInfo& t) {
  uint8_t* th = ip + t.l4;
  size_t l4len = t.total - t.l4;
  th[16] = th[17] = 0;
  uint64_t acc = static_cast<uint64_t>(TcpPseudoSum(ip, t, l4len)) + Sum16(th, l4len);
  Put16(th + 16, static_cast<uint16_t>(~Fold(acc)));
}

void StoreTcpPartialChecksum(uint8_t* ip, const TcpInfo& t) {
  Put16(ip + t.l4 + 16, TcpPseudoSum(ip, t, t.total - t.l4));
}

bool TcpChecksumValid(const uint8_t* ip, const TcpInfo& t) {
  size_t l4len = t.total - t.l4;
  uint64_t acc = static_cast<uint64_t>(TcpPseudoSum(ip, t, l4len)) + Sum16(ip + t.l4, l4len);
  return Fold(acc) == 0xffff;
}

}  // namespace sluice
