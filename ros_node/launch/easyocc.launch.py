"""Launch the EasyOcc occupancy node (ROS 2 Humble or Jazzy, after `colcon build` of ros_node/).

    ros2 launch easyocc_ros easyocc.launch.py model_path:=/path/model.onnx [rig_file:=rig.yaml]
        [image_transport:=compressed] [frame_id:=base_link] [params_file:=easyocc.yaml]

The node configures and activates itself (autostart:=true); set autostart:=false to drive its
lifecycle from a lifecycle manager instead. Any other parameter goes in params_file (YAML, under
`easyocc: ros__parameters:`); see docs/readme/ros.md for the list.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode

ARGUMENTS = {
    "model_path": ("", "ONNX model or TensorRT engine"),
    "backend": ("onnxruntime", "onnxruntime or tensorrt"),
    "rig_file": ("", "rig YAML; empty = the bundled nuScenes rig"),
    "image_transport": ("raw", "raw or compressed"),
    "frame_id": ("base_link", "output frame (ego: x forward, y left, z up)"),
    "autostart": ("true", "configure and activate on start"),
    "params_file": ("", "optional YAML with further parameters"),
    "namespace": ("", "node namespace"),
    "large_data_profile": ("true", "give Fast DDS a 64 MB shared-memory segment (ros_node/dds_profile.py)"),
}


def _large_data_profile_path() -> str:
    from easyocc.ros_node.dds_profile import profile_path

    return str(profile_path())


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    config = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    parameters = [
        {
            "model_path": config["model_path"],
            "backend": config["backend"],
            "rig_file": config["rig_file"],
            "image_transport": config["image_transport"],
            "frame_id": config["frame_id"],
            "autostart": PythonExpression(["'", config["autostart"], "'.lower() == 'true'"]),
        }
    ]
    params_file = LaunchConfiguration("params_file")
    node = LifecycleNode(
        package="easyocc_ros",
        executable="easyocc_node",
        name="easyocc",
        namespace=config["namespace"],
        output="screen",
        parameters=parameters + [params_file],
        condition=IfCondition(PythonExpression(["'", params_file, "' != ''"])),
    )
    node_without_file = LifecycleNode(
        package="easyocc_ros",
        executable="easyocc_node",
        name="easyocc",
        namespace=config["namespace"],
        output="screen",
        parameters=parameters,
        condition=IfCondition(PythonExpression(["'", params_file, "' == ''"])),
    )
    profile = SetEnvironmentVariable(
        "FASTRTPS_DEFAULT_PROFILES_FILE",
        _large_data_profile_path(),
        condition=IfCondition(config["large_data_profile"]),
    )
    return LaunchDescription([*declared, profile, node, node_without_file])
