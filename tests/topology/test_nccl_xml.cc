// NCCL topology XML: export -> import round trips, import of an NCCL-style dump, errors.
#include <gtest/gtest.h>

#include "error_of.h"

#include "topology/error.h"
#include "topology/nccl_xml.h"
#include "topology/presets.h"
#include "topology/validate.h"
#include "topology/xml_document.h"

namespace nccl_moe::topo {
namespace {

using topo::test::errorOf;

// What NCCL's XML cannot carry, cleared so that the rest must survive the round trip.
Node xmlVisible(Node node) {
  node.hostname.clear();
  node.hostId.clear();
  node.nvlinkDomain.clear();
  node.cpu.model.clear();
  node.p2pPerfRank.clear();
  for (auto& numa : node.numa) numa.memoryBytes = 0;
  for (auto& gpu : node.gpus) {
    gpu.name.clear();
    gpu.smCount = 0;
    gpu.memoryBytes = 0;
    gpu.pcie.gbytesPerSec = 0;
  }
  for (auto& nic : node.nics) {
    nic.guid.clear();
    nic.netdev.clear();
    nic.pcie.gbytesPerSec = 0;
  }
  return node;
}

TEST(TopoNcclXml, EveryPresetRoundTrips) {
  for (const auto& preset : presetList()) {
    Cluster cluster = makePreset(preset.name, 2);
    std::string text = toNcclXmlText(cluster);
    Cluster back = parseNcclXml(text, preset.name + ".xml");
    ASSERT_EQ(back.nodes.size(), cluster.nodes.size()) << preset.name;
    for (size_t n = 0; n < cluster.nodes.size(); ++n) {
      EXPECT_EQ(xmlVisible(back.nodes[n]), xmlVisible(cluster.nodes[n])) << preset.name << " node " << n;
    }
    EXPECT_TRUE(findProblems(back).empty()) << preset.name;
    // Export of the import is the same text: the format is stable.
    Cluster again = back;
    for (size_t n = 0; n < again.nodes.size(); ++n) again.nodes[n].hostId = back.nodes[n].hostId;
    EXPECT_EQ(toNcclXmlText(again), text) << preset.name;
  }
}

TEST(TopoNcclXml, ExportUsesNcclElementsAndAttributes) {
  XmlElement system = toNcclXml(makePreset("dgx-h100", 1).nodes[0]);
  EXPECT_EQ(system.name, "system");
  ASSERT_NE(system.attribute("version"), nullptr);
  EXPECT_EQ(*system.attribute("version"), "1");
  ASSERT_EQ(system.children.size(), 2u);  // one <cpu> per NUMA node
  const XmlElement& cpu = system.children[0];
  EXPECT_EQ(*cpu.attribute("numaid"), "0");
  EXPECT_EQ(*cpu.attribute("affinity"), "000000ff,ffffffff,ffff0000,00000000,00ffffff,ffffffff");
  EXPECT_EQ(*cpu.attribute("familyid"), "6");
  EXPECT_EQ(*cpu.attribute("modelid"), "143");
  // A GPU and its NIC share a (synthetic) switch: <pci class=bridge><pci gpu/><pci nic/></pci>.
  const XmlElement& pciSwitch = cpu.children[0];
  EXPECT_EQ(*pciSwitch.attribute("class"), "0x060400");
  ASSERT_EQ(pciSwitch.children.size(), 2u);
  const XmlElement& gpuPci = pciSwitch.children[0];
  EXPECT_EQ(*gpuPci.attribute("busid"), "0000:1b:00.0");
  EXPECT_EQ(*gpuPci.attribute("link_speed"), "32.0 GT/s PCIe");
  EXPECT_EQ(*gpuPci.attribute("link_width"), "16");
  const XmlElement& gpu = gpuPci.children[0];
  EXPECT_EQ(gpu.name, "gpu");
  EXPECT_EQ(*gpu.attribute("sm"), "90");
  EXPECT_EQ(*gpu.attribute("dev"), "0");
  const XmlElement& nvlink = gpu.children[0];
  EXPECT_EQ(*nvlink.attribute("count"), "18");
  EXPECT_EQ(*nvlink.attribute("tclass"), "0x068000");
  const XmlElement& net = pciSwitch.children[1].children[0].children[0];
  EXPECT_EQ(net.name, "net");
  EXPECT_EQ(*net.attribute("name"), "mlx5_0");
  EXPECT_EQ(*net.attribute("speed"), "400000");
}

// Shaped like NCCL_TOPO_DUMP_FILE output of a 4-GPU box with direct NVLinks (no switch).
constexpr const char* kDump = R"(<?xml version="1.0"?>
<system version="1">
  <!-- NCCL dumps carry more attributes than we read; they must be ignored -->
  <cpu host_hash="0x8a2f7c3d11e5b0aa" numaid="0" affinity="00000000,0000ffff" arch="x86_64" vendor="GenuineIntel" familyid="6" modelid="85">
    <pci busid="0000:17:00.0" class="0x060400" vendor="0x10b5" device="0x8747" link_speed="8.0 GT/s PCIe" link_width="16">
      <pci busid="0000:18:00.0" class="0x030200" vendor="0x10de" device="0x1db5" link_speed="8.0 GT/s PCIe" link_width="16">
        <gpu dev="0" sm="70" rank="0" gdr="1">
          <nvlink target="0000:19:00.0" count="2" tclass="0x030200"/>
          <nvlink target="0000:3B:00.0" count="1" tclass="0x030200"/>
        </gpu>
      </pci>
      <pci busid="0000:19:00.0" class="0x030200" vendor="0x10de" device="0x1db5" link_speed="8.0 GT/s PCIe" link_width="16">
        <gpu dev="1" sm="70" rank="1" gdr="1">
          <nvlink target="0000:18:00.0" count="2" tclass="0x030200"/>
        </gpu>
      </pci>
      <pci busid="0000:1a:00.0" class="0x020700" vendor="0x15b3" device="0x1017" link_speed="8.0 GT/s PCIe" link_width="16">
        <nic>
          <net name="mlx5_0" dev="0" speed="100000" port="1" latency="0.000000" guid="0x1c34da0300aabb01" maxconn="262144" gdr="1"/>
        </nic>
      </pci>
    </pci>
    <pci busid="0000:3a:00.0" class="0x060400" link_speed="8.0 GT/s PCIe" link_width="16">
      <pci busid="0000:3b:00.0" class="0x030200" vendor="0x10de" link_speed="8.0 GT/s PCIe" link_width="16">
        <gpu dev="2" sm="70" rank="2" gdr="1">
          <nvlink target="0000:18:00.0" count="1" tclass="0x030200"/>
          <c2c bw="0" count="0"/>
        </gpu>
      </pci>
    </pci>
  </cpu>
  <cpu host_hash="0x8a2f7c3d11e5b0aa" numaid="1" affinity="00000000,ffff0000" arch="x86_64" vendor="GenuineIntel" familyid="6" modelid="85">
    <pci busid="0000:86:00.0" class="0x030200" vendor="0x10de" link_speed="8.0 GT/s PCIe" link_width="16">
      <gpu dev="3" sm="70" rank="3" gdr="1"/>
    </pci>
    <pci busid="0000:87:00.0" class="0x020000" vendor="0x15b3" link_speed="16.0 GT/s PCIe" link_width="8">
      <nic>
        <net name="mlx5_1" dev="1" speed="200000" port="1" latency="0.000000" guid="0x1c34da0300aabb02" maxconn="262144" gdr="1"/>
      </nic>
    </pci>
  </cpu>
</system>
)";

TEST(TopoNcclXml, ImportsNcclDump) {
  Cluster cluster = parseNcclXml(kDump, "dump.xml");
  ASSERT_EQ(cluster.nodes.size(), 1u);
  const Node& node = cluster.nodes[0];
  EXPECT_EQ(node.hostId, "nccl-host-0x8a2f7c3d11e5b0aa");
  ASSERT_EQ(node.gpus.size(), 4u);
  ASSERT_EQ(node.nics.size(), 2u);
  ASSERT_EQ(node.numa.size(), 2u);
  EXPECT_EQ(node.numa[0].cpus, "0-15");
  EXPECT_EQ(node.numa[1].cpus, "16-31");
  EXPECT_EQ(node.cpu.modelId, 85);
  EXPECT_EQ(node.gpus[2].busId, "0000:3b:00.0");
  EXPECT_EQ(node.gpus[0].ccMajor, 7);
  EXPECT_EQ(node.gpus[0].nvlinks, 3);
  EXPECT_EQ(node.gpus[0].nvswitchLinks, 0);
  EXPECT_DOUBLE_EQ(node.gpus[0].nvlinkGBpsPerLink, 25.0);
  EXPECT_EQ(node.gpus[0].pcie.gen, 3);
  EXPECT_EQ(node.nvlinks[0][1], 2);
  EXPECT_EQ(node.nvlinks[0][2], 1);
  EXPECT_EQ(node.nvlinks[2][0], 1);
  EXPECT_EQ(node.nvlinks[1][2], 0);
  EXPECT_EQ(node.nvlinks[0][3], 0);
  EXPECT_EQ(node.gpuPaths[0][1], PathClass::kPix);
  EXPECT_EQ(node.gpuPaths[0][2], PathClass::kNode);
  EXPECT_EQ(node.gpuPaths[0][3], PathClass::kSys);
  EXPECT_EQ(node.gpuNicPaths[0][0], PathClass::kPix);
  EXPECT_EQ(node.gpuNicPaths[2][0], PathClass::kNode);
  EXPECT_EQ(node.gpuNicPaths[3][1], PathClass::kNode);
  EXPECT_EQ(node.nics[0].kind, NicKind::kInfiniband);
  EXPECT_DOUBLE_EQ(node.nics[0].gbitPerSec, 100.0);
  EXPECT_EQ(node.nics[0].guid, "0x1c34da0300aabb01");
  EXPECT_EQ(node.nics[1].kind, NicKind::kRoce);  // verbs name on an Ethernet-class function
  EXPECT_EQ(node.nics[1].pcie.gen, 4);
  EXPECT_EQ(node.nics[1].pcie.width, 8);
  EXPECT_EQ(node.gpus[0].rail, 0);
  EXPECT_EQ(node.gpus[3].rail, 1);
  EXPECT_TRUE(findProblems(cluster).empty()) << ::testing::PrintToString(findProblems(cluster));
}

TEST(TopoNcclXml, HostHashesSplitNodes) {
  std::string two = R"(<system version="1">
    <cpu host_hash="0x1" numaid="0"><pci busid="0000:01:00.0" class="0x030200" link_speed="" link_width="0"><gpu dev="0" sm="90" gdr="1"/></pci></cpu>
    <cpu host_hash="0x2" numaid="0"><pci busid="0000:01:00.0" class="0x030200" link_speed="" link_width="0"><gpu dev="0" sm="90" gdr="1"/></pci></cpu>
  </system>)";
  Cluster cluster = parseNcclXml(two, "two.xml");
  ASSERT_EQ(cluster.nodes.size(), 2u);
  EXPECT_EQ(cluster.nodes[0].hostId, "nccl-host-0x1");
  EXPECT_EQ(cluster.nodes[1].hostId, "nccl-host-0x2");
}

TEST(TopoNcclXml, MalformedFilesAreRejectedWithLines) {
  EXPECT_EQ(errorOf([] { parseNcclXml("<system version=\"2\">\n</system>", "v2.xml"); }),
            "v2.xml:1: <system version=\"2\"> is not supported (NCCL's format is version 1)");
  EXPECT_EQ(errorOf([] { parseNcclXml("<system version=\"1\">\n  <cpu numaid=\"0\">\n  </pci>\n</system>", "bad.xml"); }),
            "bad.xml:3: invalid XML: </pci> closes <cpu> opened on line 2");
  EXPECT_EQ(errorOf([] { parseNcclXml("<system version=\"1\">\n<cpu numaid=\"0\">\n<pci class=\"0x03\"/>\n</cpu></system>", "nobus.xml"); }),
            "nobus.xml:3: <pci> needs attribute busid");
  EXPECT_EQ(errorOf([] { parseNcclXml("<system version=\"1\"><cpu numaid=\"zero\"/></system>", "n.xml"); }),
            "n.xml:1: <cpu numaid=\"zero\">: not an integer");
  EXPECT_EQ(errorOf([] { parseNcclXml("<topology/>", "t.xml"); }), "t.xml:1: the root element is <topology>, not <system>");
  EXPECT_EQ(errorOf([] { parseNcclXml("<system version=\"1\">", "cut.xml"); }),
            "cut.xml:1: invalid XML: unterminated <system> opened on line 1");
}

TEST(TopoXmlDocument, WriterEscapesAndParserDecodes) {
  XmlElement root;
  root.name = "a";
  root.set("v", "x<\"&>y");
  root.add("b").set("w", "1");
  std::string text = writeXml(root);
  EXPECT_EQ(text, "<a v=\"x&lt;&quot;&amp;&gt;y\">\n  <b w=\"1\"/>\n</a>\n");
  XmlElement back = parseXml(text, "t");
  EXPECT_EQ(*back.attribute("v"), "x<\"&>y");
  EXPECT_EQ(back.children.size(), 1u);
  EXPECT_EQ(back.children[0].line, 2);
}

}  // namespace
}  // namespace nccl_moe::topo
